import GithubSlugger from 'github-slugger'
import { Lexer } from 'marked'

// Heading anchors exactly as GitHub renders them (github-slugger: lower-case, punctuation
// dropped, spaces to '-', repeats suffixed -1, -2 …). One function serves `check` and the
// HTML renderer, so a link that resolves in CI also opens the right section on the git host.

export interface HeadingAnchor { depth: number, text: string, slug: string, line: number }

export function headingAnchors (markdown: string): HeadingAnchor[] {
  const slugger = new GithubSlugger()
  const anchors: HeadingAnchor[] = []
  let line = 1
  for (const token of new Lexer().lex(markdown)) {
    if (token.type === 'heading') {
      anchors.push({ depth: token.depth, text: token.text, slug: slugger.slug(plainText(token.text)), line })
    }
    line += (token.raw.match(/\n/g) ?? []).length
  }
  return anchors
}

// GitHub slugs the rendered text: drop inline markup (links keep their text, code keeps its content).
function plainText (inline: string): string {
  return inline
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*_~]/g, '')
    .replace(/<[^>]+>/g, '')
}
