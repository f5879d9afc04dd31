import { randomBytes } from 'node:crypto'
import { startFakeServer, type FakeReply, type FakeServer } from './fake-http.js'

// A fake Slack incoming webhook that refuses what Slack refuses (contracts.md): a body that is
// not JSON (by Content-Type or content), nothing to show, any Block Kit limit exceeded,
// malformed or too many attachments, links and images that are not web URLs (`javascript:`…).
// It refuses them in every mode: Slack checks a message before it fails or throttles it.
// Lengths are counted in UTF-16 code units, never fewer than Slack's characters, so what passes
// here fits in Slack too. Block types other than the ones modelled below are refused, so a typo
// in a type is caught. Slack also takes a form-encoded `payload=`; the service never sends one,
// so the fake refuses it to catch a missing JSON Content-Type.

export type SlackError = 'invalid_payload' | 'no_text' | 'invalid_blocks' | 'invalid_attachments' | 'too_many_attachments'
export interface SlackVerdict { error: SlackError, detail: string }

export interface FakeSlackOptions {
  // Enforce ~1 message/s per webhook (429 + Retry-After). Off by default: tests send bursts.
  rateLimit?: boolean
  now?: () => number
}

export interface FakeSlack extends FakeServer {
  // Another webhook URL on the same server (its own rate-limit bucket).
  webhookUrl: (token?: string) => string
}

export async function startFakeSlack (opts: FakeSlackOptions = {}): Promise<FakeSlack> {
  const now = opts.now ?? Date.now
  const lastSent = new Map<string, number>()
  const server = await startFakeServer({
    validate: ({ method, path, headers, body }): FakeReply | undefined => {
      if (method !== 'POST' || !path.startsWith('/services/')) return { status: 404, body: 'no_service' }
      if (headers['content-type']?.split(';', 1)[0]?.trim().toLowerCase() !== 'application/json') {
        return { status: 400, body: 'invalid_payload', detail: `Content-Type ${JSON.stringify(headers['content-type'] ?? '')} is not application/json` }
      }
      let json: unknown
      try {
        json = JSON.parse(body)
      } catch {
        return { status: 400, body: 'invalid_payload', detail: 'body is not JSON' }
      }
      const verdict = validateSlackMessage(json)
      return verdict === null ? undefined : { status: 400, body: verdict.error, detail: verdict.detail }
    },
    handle: ({ path, body }) => {
      const json: unknown = JSON.parse(body)
      if (opts.rateLimit === true) {
        const last = lastSent.get(path)
        const t = now()
        if (last !== undefined && t - last < 1000) {
          return { status: 429, body: 'rate_limited', headers: { 'retry-after': String(Math.ceil((1000 - (t - last)) / 1000)) } }
        }
        lastSent.set(path, t)
      }
      return { status: 200, body: 'ok', accepted: json }
    },
    statusBody: (code) => ({ body: SLACK_ERROR_BODY[code] ?? 'error' }),
    rateLimitBody: () => ({ body: 'rate_limited' })
  })
  const webhookUrl = (token = randomBytes(12).toString('hex')): string => `${server.url}/services/T0FAKE000/B0FAKE000/${token}`
  return { ...server, url: webhookUrl(), webhookUrl }
}

const SLACK_ERROR_BODY: Record<number, string> = {
  400: 'invalid_payload',
  403: 'action_prohibited',
  404: 'channel_not_found',
  410: 'channel_is_archived',
  500: 'rollup_error'
}

const LIMIT = {
  attachments: 100, attachmentText: 8000,
  blocks: 50, blockId: 255, headerText: 150, sectionText: 3000, fields: 10, fieldText: 2000,
  contextElements: 10, contextText: 3000, actionsElements: 25, buttonText: 75, url: 3000, actionId: 255, value: 2000
}

class Invalid extends Error {}

// null when Slack would accept the message.
export function validateSlackMessage (json: unknown): SlackVerdict | null {
  if (!isObject(json)) return { error: 'invalid_payload', detail: 'body is not a JSON object' }
  if (json.text !== undefined && typeof json.text !== 'string') return { error: 'invalid_payload', detail: 'text is not a string' }
  const hasText = typeof json.text === 'string' && json.text.trim() !== ''
  const blocks = json.blocks
  const hasBlocks = Array.isArray(blocks) && blocks.length > 0
  const attachments = json.attachments
  if (attachments !== undefined) {
    if (!Array.isArray(attachments)) return { error: 'invalid_attachments', detail: 'attachments is not an array' }
    if (attachments.length > LIMIT.attachments) return { error: 'too_many_attachments', detail: `${attachments.length} attachments > ${LIMIT.attachments}` }
  }
  const hasAttachments = Array.isArray(attachments) && attachments.length > 0
  if (!hasText && !hasBlocks && !hasAttachments) return { error: 'no_text', detail: 'neither text nor blocks' }
  try {
    if (blocks !== undefined) validateBlocks(blocks)
  } catch (err) {
    if (err instanceof Invalid) return { error: 'invalid_blocks', detail: err.message }
    throw err
  }
  try {
    if (Array.isArray(attachments)) attachments.forEach((a, i) => attachment(a, `attachments[${i}]`))
  } catch (err) {
    if (err instanceof Invalid) return { error: 'invalid_attachments', detail: err.message }
    throw err
  }
  return null
}

// Legacy (secondary) attachments: text fields are strings, link and image fields web URLs,
// nested blocks follow the Block Kit rules, and each shows something.
const ATTACHMENT_TEXT = ['fallback', 'color', 'pretext', 'author_name', 'title', 'text', 'footer'] as const
const ATTACHMENT_URLS = ['author_link', 'author_icon', 'title_link', 'image_url', 'thumb_url', 'footer_icon'] as const

function attachment (a: unknown, at: string): void {
  if (!isObject(a)) throw new Invalid(`${at} is not an object`)
  for (const k of ATTACHMENT_TEXT) {
    if (a[k] !== undefined) check(typeof a[k] === 'string' && a[k].length <= LIMIT.attachmentText, `${at}.${k}`)
  }
  for (const k of ATTACHMENT_URLS) if (a[k] !== undefined) webUrl(a[k], `${at}.${k}`)
  if (a.fields !== undefined) {
    check(Array.isArray(a.fields) && a.fields.every((f) => isObject(f) && typeof f.title === 'string' && typeof f.value === 'string'), `${at}.fields`)
  }
  if (a.blocks !== undefined) validateBlocks(a.blocks)
  const shows = ['fallback', 'text', 'pretext', 'title'].some((k) => typeof a[k] === 'string' && (a[k] as string).trim() !== '') ||
    (Array.isArray(a.blocks) && a.blocks.length > 0) || (Array.isArray(a.fields) && a.fields.length > 0) || a.image_url !== undefined
  check(shows, `${at} shows nothing`)
}

// Slack opens these in a browser: only http and https (no javascript:, data:, …).
function webUrl (url: unknown, at: string): void {
  check(typeof url === 'string' && url.length >= 1 && url.length <= LIMIT.url, `${at} length`)
  check(URL.canParse(url as string) && ['http:', 'https:'].includes(new URL(url as string).protocol), `${at} is not an http(s) URL`)
}

function validateBlocks (blocks: unknown): void {
  if (!Array.isArray(blocks)) throw new Invalid('blocks is not an array')
  check(blocks.length <= LIMIT.blocks, `${blocks.length} blocks > ${LIMIT.blocks}`)
  const blockIds = new Set<string>()
  blocks.forEach((block, i) => {
    const at = `blocks[${i}]`
    if (!isObject(block) || typeof block.type !== 'string') throw new Invalid(`${at} has no type`)
    if (block.block_id !== undefined) {
      check(typeof block.block_id === 'string' && block.block_id.length >= 1 && block.block_id.length <= LIMIT.blockId, `${at}.block_id length`)
      check(!blockIds.has(block.block_id as string), `${at}.block_id duplicated`)
      blockIds.add(block.block_id as string)
    }
    switch (block.type) {
      case 'header':
        textObject(block.text, `${at}.text`, LIMIT.headerText, 'plain_text')
        break
      case 'section':
        check(block.text !== undefined || block.fields !== undefined, `${at} needs text or fields`)
        if (block.text !== undefined) textObject(block.text, `${at}.text`, LIMIT.sectionText)
        if (block.fields !== undefined) {
          check(Array.isArray(block.fields) && block.fields.length >= 1 && block.fields.length <= LIMIT.fields, `${at}.fields count`)
          ;(block.fields as unknown[]).forEach((f, j) => textObject(f, `${at}.fields[${j}]`, LIMIT.fieldText))
        }
        if (block.accessory !== undefined) element(block.accessory, `${at}.accessory`)
        break
      case 'divider':
        break
      case 'context':
        check(Array.isArray(block.elements) && block.elements.length >= 1 && block.elements.length <= LIMIT.contextElements, `${at}.elements count`)
        ;(block.elements as unknown[]).forEach((e, j) => {
          if (isObject(e) && e.type === 'image') image(e, `${at}.elements[${j}]`)
          else textObject(e, `${at}.elements[${j}]`, LIMIT.contextText)
        })
        break
      case 'actions': {
        check(Array.isArray(block.elements) && block.elements.length >= 1 && block.elements.length <= LIMIT.actionsElements, `${at}.elements count`)
        const actionIds = new Set<string>()
        ;(block.elements as unknown[]).forEach((e, j) => {
          const id = element(e, `${at}.elements[${j}]`)
          if (id === undefined) return
          check(!actionIds.has(id), `${at}.elements[${j}].action_id duplicated`)
          actionIds.add(id)
        })
        break
      }
      case 'image':
        image(block, at)
        break
      default:
        throw new Invalid(`${at}.type ${String(block.type)} is not a modelled block type`)
    }
  })
}

// Interactive elements: buttons only (what the renderer sends). Returns the action_id.
function element (e: unknown, at: string): string | undefined {
  if (!isObject(e) || e.type !== 'button') throw new Invalid(`${at} is not a button`)
  textObject(e.text, `${at}.text`, LIMIT.buttonText, 'plain_text')
  if (e.url !== undefined) webUrl(e.url, `${at}.url`)
  if (e.value !== undefined) check(typeof e.value === 'string' && e.value.length <= LIMIT.value, `${at}.value length`)
  if (e.style !== undefined) check(e.style === 'primary' || e.style === 'danger', `${at}.style`)
  if (e.action_id === undefined) return undefined
  check(typeof e.action_id === 'string' && e.action_id.length >= 1 && e.action_id.length <= LIMIT.actionId, `${at}.action_id length`)
  return e.action_id as string
}

function image (e: Record<string, unknown>, at: string): void {
  webUrl(e.image_url, `${at}.image_url`)
  check(typeof e.alt_text === 'string' && e.alt_text.length >= 1 && e.alt_text.length <= 2000, `${at}.alt_text`)
}

function textObject (t: unknown, at: string, max: number, only?: 'plain_text'): void {
  if (!isObject(t)) throw new Invalid(`${at} is not a text object`)
  check(t.type === 'plain_text' || t.type === 'mrkdwn', `${at}.type`)
  if (only !== undefined) check(t.type === only, `${at} must be ${only}`)
  check(typeof t.text === 'string' && t.text.length >= 1, `${at}.text empty`)
  check((t.text as string).length <= max, `${at}.text length ${(t.text as string).length} > ${max}`)
  if (t.emoji !== undefined) check(t.type === 'plain_text' && typeof t.emoji === 'boolean', `${at}.emoji only on plain_text`)
  if (t.verbatim !== undefined) check(t.type === 'mrkdwn' && typeof t.verbatim === 'boolean', `${at}.verbatim only on mrkdwn`)
}

function check (ok: boolean, what: string): void {
  if (!ok) throw new Invalid(what)
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
