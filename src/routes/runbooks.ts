import { readdir, readFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { Type } from '@sinclair/typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { escapeHtml, htmlPage, renderRunbookHtml } from '../runbooks/render.js'
import { headingAnchors } from '../runbooks/anchors.js'
import { ErrorBody, errorResponses, sendError } from './errors.js'

// GET /runbooks/ and /runbooks/<file>.md: the markdown in runbooksDir rendered as HTML with
// GitHub-compatible heading ids, so a catalog's runbookBaseUrl may point here or at the git
// host. Files are read per request (they are small and change on deploy); only plain names
// inside the directory are served.

export interface RunbooksRouteOptions { runbooksDir: string }

const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*\.md$/

// Pages are documents: no script may run, styles are inline.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'"

const html200 = { description: 'HTML page', content: { 'text/html': { schema: Type.String() } } }

export async function runbooksRoutes (fastify: FastifyInstance, opts: RunbooksRouteOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const dir = resolve(opts.runbooksDir)

  app.get('/runbooks', {
    schema: { summary: 'Redirects to /runbooks/', response: { 301: Type.Null({ description: 'Location: /runbooks/' }), ...errorResponses() } }
  }, async (_request, reply) => reply.redirect('/runbooks/', 301))

  app.get('/runbooks/', {
    schema: { summary: 'Index of the runbooks', response: { 200: html200, ...errorResponses() } }
  }, async (_request, reply) => {
    const files = await listRunbooks(dir)
    const items = await Promise.all(files.map(async (f) => {
      const title = await titleOf(join(dir, f)) ?? f
      return `<li><a href="${escapeHtml(f)}">${escapeHtml(title)}</a> <code>${escapeHtml(f)}</code></li>`
    }))
    return html(reply, htmlPage('Runbooks', `<h1>Runbooks</h1>\n<ul>\n${items.join('\n')}\n</ul>\n`))
  })

  app.get('/runbooks/:file', {
    schema: {
      summary: 'One runbook, as HTML with GitHub-compatible heading anchors (or the markdown with ?raw=1)',
      params: Type.Object({ file: Type.String() }),
      querystring: Type.Object({ raw: Type.Optional(Type.String({ description: '1 or true: the markdown source' })) }),
      response: {
        200: { description: 'the runbook', content: { 'text/html': { schema: Type.String() }, 'text/markdown': { schema: Type.String() } } },
        404: ErrorBody,
        ...errorResponses()
      }
    }
  }, async (request, reply) => {
    const name = request.params.file
    const path = join(dir, name)
    // The regex alone rules out separators and "..": the resolve check is belt and braces.
    if (!FILE_NAME.test(name) || resolve(path) !== join(dir, basename(name))) return notFound(reply, name)
    let markdown: string
    try {
      markdown = await readFile(path, 'utf8')
    } catch {
      return notFound(reply, name)
    }
    const raw = request.query.raw
    if (raw === '1' || raw === 'true') {
      return reply.type('text/markdown; charset=utf-8').header('content-security-policy', CSP).send(markdown)
    }
    const title = headingAnchors(markdown).find((a) => a.depth === 1)?.text ?? name
    return html(reply, renderRunbookHtml(markdown, title))
  })
}

function html (reply: FastifyReply, body: string): FastifyReply {
  return reply.type('text/html; charset=utf-8').header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').send(body)
}

function notFound (reply: FastifyReply, name: string): FastifyReply {
  return sendError(reply, 404, 'not_found', `no runbook named ${JSON.stringify(name)}; see /runbooks/`)
}

async function listRunbooks (dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true })
    return entries.filter((e) => e.isFile() && FILE_NAME.test(e.name)).map((e) => e.name).sort()
  } catch {
    return []
  }
}

async function titleOf (path: string): Promise<string | undefined> {
  try {
    const md = await readFile(path, 'utf8')
    return headingAnchors(md).find((a) => a.depth === 1)?.text.replace(/[`*_]/g, '')
  } catch {
    return undefined
  }
}
