import t from 'tap'
import { resolveSecret } from '../src/config/secrets.js'

const files: Record<string, string> = {
  '/run/secrets/slack': 'https://hooks.slack.com/services/T/B/filetoken\n',
  '/run/secrets/crlf': 'routing-key-from-file\r\n',
  '/run/secrets/empty': '\n',
  '/run/secrets/inner-space': 'a b\n\n'
}
const readFile = (p: string): string => {
  const content = files[p]
  if (content === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${p}'`), { code: 'ENOENT' })
  return content
}

t.test('env references: NAME, then NAME_FILE', async (t) => {
  const table: Array<[string, Record<string, string | undefined>, string | undefined]> = [
    ['NAME set', { SLACK_URL: 'https://hooks.slack.com/services/T/B/envtoken' }, 'https://hooks.slack.com/services/T/B/envtoken'],
    ['NAME wins over NAME_FILE', { SLACK_URL: 'direct', SLACK_URL_FILE: '/run/secrets/slack' }, 'direct'],
    ['NAME_FILE read, newline trimmed', { SLACK_URL_FILE: '/run/secrets/slack' }, 'https://hooks.slack.com/services/T/B/filetoken'],
    ['empty NAME falls back to NAME_FILE', { SLACK_URL: '', SLACK_URL_FILE: '/run/secrets/slack' }, 'https://hooks.slack.com/services/T/B/filetoken'],
    ['CRLF trimmed', { SLACK_URL_FILE: '/run/secrets/crlf' }, 'routing-key-from-file'],
    ['only trailing newlines trimmed', { SLACK_URL_FILE: '/run/secrets/inner-space' }, 'a b'],
    ['unset', {}, undefined],
    ['empty', { SLACK_URL: '' }, undefined],
    ['empty NAME_FILE', { SLACK_URL_FILE: '' }, undefined],
    ['file with only a newline', { SLACK_URL_FILE: '/run/secrets/empty' }, undefined]
  ]
  for (const [name, env, expected] of table) t.equal(resolveSecret({ env: 'SLACK_URL' }, env, readFile), expected, name)
})

t.test('file references', async (t) => {
  t.equal(resolveSecret({ file: '/run/secrets/crlf' }, {}, readFile), 'routing-key-from-file')
  t.equal(resolveSecret({ file: '/run/secrets/empty' }, {}, readFile), undefined)
})

t.test('a named file that cannot be read is an error naming the path, not the content', async (t) => {
  t.throws(() => resolveSecret({ env: 'PD_KEY' }, { PD_KEY_FILE: '/run/secrets/missing' }, readFile), { message: 'cannot read secret file /run/secrets/missing (PD_KEY_FILE): ENOENT' })
  t.throws(() => resolveSecret({ file: '/nope' }, {}, readFile), { message: /\/nope.*ENOENT/ })
  t.equal(resolveSecret({ env: 'PD_KEY' }, {}, () => { throw new Error('must not be called') }), undefined, 'no file is read when nothing names one')
})
