import GithubSlugger from 'github-slugger'
import { Lexer, type Token } from 'marked'

// Heading anchors exactly as GitHub renders them: GitHub slugs the heading's rendered text with
// github-slugger (lower-case, punctuation and emoji dropped, `_` and digits kept, spaces to '-',
// repeats suffixed -1, -2 …). One function serves `check` and the HTML renderer, so a link that
// resolves in CI also opens the right section on the git host.

export interface HeadingAnchor { depth: number, text: string, slug: string, line: number }

export function headingAnchors (markdown: string): HeadingAnchor[] {
  const slugger = new GithubSlugger()
  const anchors: HeadingAnchor[] = []
  let line = 1
  for (const token of new Lexer().lex(markdown)) {
    if (token.type === 'heading') {
      anchors.push({ depth: token.depth, text: token.text, slug: slugger.slug(renderedText(token.tokens ?? [])), line })
    }
    line += (token.raw.match(/\n/g) ?? []).length
  }
  return anchors
}

// The text a browser shows for inline tokens: markup gone, link and emphasis text kept, code
// content kept verbatim, tags and images dropped, character references decoded. Intraword `_`
// is plain text to the markdown lexer, so it survives here as it does on GitHub.
function renderedText (tokens: Token[]): string {
  let out = ''
  for (const token of tokens) {
    switch (token.type) {
      case 'text':
        out += 'tokens' in token && token.tokens !== undefined ? renderedText(token.tokens) : decodeEntities(token.text)
        break
      case 'codespan':
      case 'escape':
        out += token.text
        break
      case 'html':
      case 'image':
      case 'br':
        break
      default:
        out += 'tokens' in token && token.tokens !== undefined ? renderedText(token.tokens) : 'text' in token ? String(token.text) : ''
    }
  }
  return out
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' }

// Markdown text decodes character references; only the common ones appear in headings. An
// unknown name is left as written, which is what a browser shows too.
function decodeEntities (s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10)
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole
    }
    return NAMED[ref] ?? whole
  })
}
