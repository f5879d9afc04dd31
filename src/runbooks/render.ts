import { Lexer, Parser, Renderer, getDefaults, type Token, type Tokens } from 'marked'
import { headingAnchors } from './anchors.js'

// Runbook markdown → a small self-contained HTML page. Heading ids come from headingAnchors(),
// the same function `alert-enricher check` uses, so a runbook_url that passes the check opens
// the same section here and on the git host. Raw HTML in the markdown is shown as text, and the
// page carries no script: it is a document, nothing more.

const STYLE = `
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
h1,h2,h3,h4{line-height:1.25;margin-top:1.6em}h1,h2{border-bottom:1px solid #d0d7de;padding-bottom:.3em}
:target{background:#fff8c5}a{color:#0969da}
code{font:85% ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:.15em .35em;border-radius:4px}
pre{background:#f6f8fa;padding:1em;overflow:auto;border-radius:6px}pre code{padding:0;background:none}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #d0d7de;padding:.35em .7em;text-align:left;vertical-align:top}
blockquote{margin:0;padding:0 1em;color:#59636e;border-left:.25em solid #d0d7de}
`.trim()

export function escapeHtml (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}

export function renderRunbookHtml (markdown: string, title: string): string {
  return htmlPage(title, renderRunbookBody(markdown))
}

// The body alone, for callers that build their own page (and for tests).
export function renderRunbookBody (markdown: string): string {
  const tokens = new Lexer().lex(markdown)
  // headingAnchors walks the same top-level token list in the same order, so zipping the two
  // gives every heading the slug (with the same -1, -2 suffixes) that check computed.
  const slugs = headingAnchors(markdown).map((a) => a.slug)
  const ids = new Map<Token, string>()
  let i = 0
  for (const token of tokens) {
    if (token.type === 'heading') {
      const slug = slugs[i++]
      if (slug !== undefined) ids.set(token, slug)
    }
  }

  const renderer = new Renderer()
  renderer.heading = function (token: Tokens.Heading): string {
    const inner = this.parser.parseInline(token.tokens)
    const id = ids.get(token)
    if (id === undefined) return `<h${token.depth}>${inner}</h${token.depth}>\n`
    // Self-link so a reader can copy the section URL; not when the heading already holds a link.
    const text = inner.includes('<a ') ? inner : `<a href="#${escapeHtml(id)}">${inner}</a>`
    return `<h${token.depth} id="${escapeHtml(id)}">${text}</h${token.depth}>\n`
  }
  renderer.html = ({ text }: Tokens.HTML | Tokens.Tag): string => escapeHtml(text)
  return new Parser({ ...getDefaults(), renderer }).parse(tokens)
}

export function htmlPage (title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}</main>
</body>
</html>
`
}
