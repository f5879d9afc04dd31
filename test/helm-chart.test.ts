import t, { type TAP } from 'tap'
import { Ajv } from 'ajv'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { parseTemplate } from './helpers/go-template.js'
import { loadChart, mergeValues, objects, renderChart } from './helpers/helm-render.js'

// No helm binary here: the chart is checked by validating values against the schema, by
// static checks on the templates, and by rendering it with a renderer for the Go-template
// subset it uses (test/helpers/go-template.ts) and asserting on the Kubernetes objects.

const root = fileURLToPath(new URL('..', import.meta.url))
const chartDir = join(root, 'helm', 'alert-enricher')
const chart = loadChart(chartDir)
const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as object
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema)

type Obj = Record<string, unknown>
const at = (v: unknown, ...path: Array<string | number>): unknown =>
  path.reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string | number, unknown>)[k] : undefined), v)
const list = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : [])

function valuesOk (overrides: Obj): { ok: boolean, errors: string } {
  const ok = validate(mergeValues(chart.values, overrides))
  return { ok, errors: JSON.stringify(validate.errors ?? []) }
}

/** Renders with overrides after checking the schema accepts them, as helm would. */
function renderValid (t: Pick<TAP, 'ok'>, overrides: Obj = {}, release?: { Name: string, Namespace: string }): Map<string, Obj> {
  const v = valuesOk(overrides)
  t.ok(v.ok, `schema accepts ${JSON.stringify(overrides)}`, { errors: v.errors })
  return objects(renderChart(chart, overrides, release))
}

function statefulSet (objs: Map<string, Obj>): Obj {
  const sts = [...objs.values()].find((o) => o.kind === 'StatefulSet')
  if (sts === undefined) throw new Error('no StatefulSet rendered')
  return sts
}
const podSpec = (sts: Obj): Obj => at(sts, 'spec', 'template', 'spec') as Obj
const container = (sts: Obj): Obj => list(at(podSpec(sts), 'containers'))[0] ?? {}
const envOf = (sts: Obj): Map<string, unknown> => new Map(list(container(sts).env).map((e) => [String(e.name), e.value]))
const mountOf = (sts: Obj, name: string): Obj | undefined => list(container(sts).volumeMounts).find((m) => m.name === name)
const volumeOf = (sts: Obj, name: string): Obj | undefined => list(podSpec(sts).volumes).find((v) => v.name === name)

const kpsValues = {
  serviceMonitor: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' } },
  prometheusRule: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' } },
  grafanaDashboard: { enabled: true, namespace: 'grafana', annotations: { grafana_folder: 'Alerting' } },
  podDisruptionBudget: { enabled: true }
}

t.test('Chart.yaml', async (t) => {
  const m = chart.meta
  t.equal(m.apiVersion, 'v2')
  t.equal(m.name, 'alert-enricher', 'named like its directory')
  t.equal(m.type, 'application')
  t.match(String(m.version), /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, 'version is SemVer')
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
  t.equal(m.appVersion, pkg.version, 'appVersion is the package version (the default image tag)')
})

t.test('values.yaml validates against values.schema.json', async (t) => {
  t.equal(at(schema, '$schema'), 'http://json-schema.org/draft-07/schema#')
  const ok = validate(chart.values)
  t.ok(ok, 'defaults are valid', { errors: validate.errors })
  for (const overrides of [kpsValues, { catalog: { existingConfigMap: 'team-catalog' } }, { persistence: { enabled: false } },
    { podDisruptionBudget: { enabled: true, minAvailable: 1 } }, { podDisruptionBudget: { enabled: true, maxUnavailable: '100%' } },
    { runbookBaseUrl: 'https://git.example.com/org/alert-enricher/blob/main/runbooks/' }, { runbookBaseUrl: 'http://alert-enricher.example.com/runbooks' },
    { adminAuth: { bearerToken: { existingSecret: 'alert-enricher-admin-token', key: 'admin.token' } } }]) {
    const v = valuesOk(overrides)
    t.ok(v.ok, `valid: ${JSON.stringify(overrides)}`, { errors: v.errors })
  }
})

t.test('values.schema.json rejects bad values', async (t) => {
  const bad: Array<[string, Obj, string]> = [
    ['two replicas (single-writer SQLite store)', { replicaCount: 2 }, '/replicaCount'],
    ['two replicas with an empty database block', { replicaCount: 3, database: { url: '', existingSecret: '' } }, '/replicaCount'],
    ['a database URL that is not postgres://', { database: { url: 'mysql://db/x' } }, '/database/url'],
    ['zero replicas with a database', { replicaCount: 0, database: { existingSecret: 'db' } }, '/replicaCount'],
    ['replicaCount as a string', { replicaCount: '1' }, '/replicaCount'],
    ['a misspelt top-level key', { replicas: 1 }, ''],
    ['an unknown key under service', { service: { nodePort: 30095 } }, '/service'],
    ['service.port as a string', { service: { port: '9095' } }, '/service/port'],
    ['service.port out of range', { service: { port: 70000 } }, '/service/port'],
    ['a writable root filesystem', { securityContext: { readOnlyRootFilesystem: false } }, '/securityContext/readOnlyRootFilesystem'],
    ['running as root allowed', { podSecurityContext: { runAsNonRoot: false } }, '/podSecurityContext/runAsNonRoot'],
    ['privilege escalation', { securityContext: { allowPrivilegeEscalation: true } }, '/securityContext/allowPrivilegeEscalation'],
    ['capabilities added', { securityContext: { capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } } }, '/securityContext/capabilities/add'],
    ['ALL not dropped', { securityContext: { capabilities: { drop: ['NET_RAW'] } } }, '/securityContext/capabilities/drop'],
    ['an unknown log level', { logLevel: 'verbose' }, '/logLevel'],
    ['a volume size that is not a quantity', { persistence: { size: 'lots' } }, '/persistence/size'],
    ['inline catalog and an existing ConfigMap together', { catalog: { content: 'entries: []', existingConfigMap: 'theirs' } }, '/catalog'],
    ['basic auth secret without a username', { webhookAuth: { basicAuth: { existingSecret: 'am-basic' } } }, '/webhookAuth/basicAuth'],
    ['a notifier env name that is not an env name', { notifiers: { keys: { 'slack-url': 'slack' } } }, '/notifiers/keys'],
    ['a scrape interval that is not a duration', { serviceMonitor: { interval: '30 seconds' } }, '/serviceMonitor/interval'],
    ['a non-string label value', { serviceMonitor: { additionalLabels: { release: 1 } } }, '/serviceMonitor/additionalLabels/release'],
    ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy'],
    ['a PDB budget in words', { podDisruptionBudget: { maxUnavailable: 'one' } }, '/podDisruptionBudget/maxUnavailable'],
    ['enabled as a string', { serviceMonitor: { enabled: 'true' } }, '/serviceMonitor/enabled'],
    ['a runbook base URL that is not http(s)', { runbookBaseUrl: 'ftp://files.example.com/runbooks/' }, '/runbookBaseUrl'],
    ['a runbook base URL without a scheme', { runbookBaseUrl: 'git.example.com/runbooks/' }, '/runbookBaseUrl'],
    ['an unknown key under adminAuth', { adminAuth: { basicAuth: { username: 'ops' } } }, '/adminAuth'],
    ['an admin token Secret name that is not a Kubernetes name', { adminAuth: { bearerToken: { existingSecret: 'Admin_Token' } } }, '/adminAuth/bearerToken/existingSecret'],
    ['an empty admin token key', { adminAuth: { bearerToken: { key: '' } } }, '/adminAuth/bearerToken/key']
  ]
  for (const [why, overrides, path] of bad) {
    t.notOk(validate(mergeValues(chart.values, overrides)), `rejects ${why}`)
    t.ok((validate.errors ?? []).some((e) => e.instancePath === path), `${why}: reported at ${path === '' ? '/' : path}`, { errors: validate.errors })
  }
})

/** `.Values.a.b` paths a template source refers to (through `.Values` or `$.Values`). */
function valuesPaths (src: string): string[][] {
  const actions = src.match(/\{\{[\s\S]*?\}\}/g) ?? []
  return actions.flatMap((a) => [...a.matchAll(/\.Values((?:\.\w+)+)/g)].map((m) => (m[1] ?? '').slice(1).split('.')))
}
function missingPaths (src: string, values: Obj): string[] {
  return valuesPaths(src).filter((p) => {
    let v: unknown = values
    for (const k of p) {
      if (v === null || typeof v !== 'object' || !Object.prototype.hasOwnProperty.call(v, k)) return true
      v = (v as Obj)[k]
    }
    return false
  }).map((p) => p.join('.'))
}

t.test('templates are well-formed for the values they use', async (t) => {
  const helpers = chart.sources.get('_helpers.tpl') ?? ''
  const defined = new Set([...helpers.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]))
  const included = new Set<string>()
  for (const [name, src] of chart.sources) {
    t.doesNotThrow(() => parseTemplate(src, name), `${name}: every if/range/with/define has its end`)
    t.same(missingPaths(src, chart.values), [], `${name}: every .Values path exists in values.yaml`)
    for (const m of src.matchAll(/include\s+"([^"]+)"/g)) {
      included.add(m[1] ?? '')
      t.ok(defined.has(m[1]), `${name}: include "${m[1]}" names a define in _helpers.tpl`)
    }
    if (!name.endsWith('.yaml')) continue
    // The YAML skeleton: after the optional guard/variable lines, a Kubernetes object.
    const skeleton = src.split('\n').filter((l) => !/^\s*\{\{-?\s*(if|\$\w+\s*:=)[^}]*\}\}\s*$/.test(l) && l.trim() !== '')
    t.match(skeleton[0], /^apiVersion: \S+$/, `${name}: starts with apiVersion`)
    t.ok(skeleton.some((l) => /^kind: [A-Z]\w+$/.test(l)), `${name}: has a kind`)
    t.ok(skeleton.some((l) => l === 'metadata:'), `${name}: has metadata`)
  }
  for (const d of defined) t.ok(included.has(d ?? ''), `define "${d}" is used`)
})

t.test('the static checks catch what they claim to', async (t) => {
  t.throws(() => parseTemplate('{{- if .Values.a }}\nx: 1\n', 'unclosed.yaml'), /not closed/)
  t.throws(() => parseTemplate('x: 1\n{{- end }}\n', 'extra-end.yaml'), /without an open block/)
  t.throws(() => parseTemplate('{{- range .Values.a }}\n{{- else if .b }}\n{{- end }}\n', 'bad-else.yaml'), /unsupported/)
  t.same(missingPaths('{{ .Values.service.port }} {{ $.Values.serviceMonitor.nope }} {{ .Values.nope.deeper }}', chart.values),
    ['serviceMonitor.nope', 'nope.deeper'])
})

t.test('chart files are byte-identical copies of monitoring/', async (t) => {
  // The originals live in monitoring/ (reviewed with the metrics); Helm can only package
  // files inside the chart directory, so files/ holds copies. Update both together:
  //   cp monitoring/grafana-dashboard.json monitoring/alert-enricher.rules.yml helm/alert-enricher/files/
  const names = ['grafana-dashboard.json', 'alert-enricher.rules.yml']
  const present = names.filter((n) => existsSync(join(root, 'monitoring', n)))
  t.ok(present.length > 0, `originals found: ${present.join(', ')}`)
  for (const n of present) {
    const original = readFileSync(join(root, 'monitoring', n))
    const copy = join(chartDir, 'files', n)
    t.ok(existsSync(copy), `files/${n} exists`)
    if (existsSync(copy)) t.ok(readFileSync(copy).equals(original), `files/${n} is identical to monitoring/${n}`)
  }
  for (const [name, src] of chart.sources) {
    for (const m of src.matchAll(/\.Files\.Get\s+"([^"]+)"/g)) t.ok(existsSync(join(chartDir, m[1] ?? '')), `${name}: ${m[1]} exists in the chart`)
  }
})

t.test('defaults: a StatefulSet, its Service and ServiceAccount, nothing optional', async (t) => {
  const objs = renderValid(t)
  t.same([...objs.keys()].sort(), ['Service/alert-enricher', 'ServiceAccount/alert-enricher', 'StatefulSet/alert-enricher'])
  const sts = statefulSet(objs)
  t.equal(at(sts, 'spec', 'replicas'), 1, 'one replica')
  t.equal(at(sts, 'spec', 'serviceName'), 'alert-enricher')
  const env = envOf(sts)
  t.equal(env.get('DATA_DIR'), '/data')
  t.equal(env.get('PORT'), '9095')
  t.notOk(env.has('CATALOG_PATH'), 'the image\'s bundled catalog')
  t.notOk(env.has('RUNBOOK_BASE_URL'), 'the catalog\'s own runbookBaseUrl')
  t.notOk(env.has('ADMIN_BEARER_TOKEN_FILE'), 'admin routes unauthenticated unless a Secret is named')
  t.notOk(volumeOf(sts, 'secrets'), 'no secrets mounted')
  t.notOk(mountOf(sts, 'secrets'), 'nor a secrets mount')
  t.equal(at(sts, 'spec', 'template', 'metadata', 'annotations', 'checksum/catalog'), undefined)
  const claim = list(at(sts, 'spec', 'volumeClaimTemplates'))[0]
  t.equal(at(claim, 'metadata', 'name'), 'data')
  t.equal(at(claim, 'spec', 'resources', 'requests', 'storage'), '1Gi')
  t.same(at(claim, 'spec', 'accessModes'), ['ReadWriteOnce'])
  t.notOk(Object.prototype.hasOwnProperty.call(at(claim, 'spec'), 'storageClassName'), 'cluster default StorageClass')
  t.equal(at(podSpec(sts), 'automountServiceAccountToken'), false)
})

function deployment (objs: Map<string, Obj>): Obj {
  const d = [...objs.values()].find((o) => o.kind === 'Deployment')
  if (d === undefined) throw new Error('no Deployment rendered')
  return d
}

t.test('a database switches to a Deployment of 2 with a PodDisruptionBudget and anti-affinity', async (t) => {
  for (const database of [{ existingSecret: 'alert-enricher-db', key: 'dsn' }, { url: 'postgres://ae:pw@db:5432/ae' }]) {
    const objs = renderValid(t, { database })
    t.notOk([...objs.values()].some((o) => o.kind === 'StatefulSet'), 'no StatefulSet')
    const d = deployment(objs)
    t.equal(at(d, 'spec', 'replicas'), 2, 'two replicas by default')
    t.equal(at(d, 'spec', 'strategy', 'rollingUpdate', 'maxUnavailable'), 0, 'a rollout never drops below replicas')
    t.equal(at(d, 'spec', 'volumeClaimTemplates'), undefined)
    const env = envOf(d)
    t.equal(env.get('DATABASE_URL_FILE'), '/etc/alert-enricher/secrets/database/url')
    t.notOk(env.has('DATA_DIR'), 'no embedded store')
    t.notOk(env.has('DATABASE_URL'), 'the URL never as a plain env value')
    t.notOk(mountOf(d, 'data'), 'no data volume')
    const sources = list(at(volumeOf(d, 'secrets'), 'projected', 'sources'))
    const secretName = 'existingSecret' in database ? 'alert-enricher-db' : 'alert-enricher-database'
    t.same(sources.map((x) => at(x, 'secret', 'name')), [secretName], 'the URL mounted from its Secret')
    t.same(at(sources[0], 'secret', 'items'), [{ key: 'existingSecret' in database ? 'dsn' : 'url', path: 'database/url' }])
    const anti = at(podSpec(d), 'affinity', 'podAntiAffinity', 'preferredDuringSchedulingIgnoredDuringExecution', 0, 'podAffinityTerm') as Obj
    t.equal(anti.topologyKey, 'kubernetes.io/hostname')
    t.same(at(anti, 'labelSelector', 'matchLabels'), at(d, 'spec', 'selector', 'matchLabels'), 'anti-affinity against its own pods')
    const pdb = objs.get('PodDisruptionBudget/alert-enricher')
    t.equal(at(pdb, 'spec', 'maxUnavailable'), 1, 'a PodDisruptionBudget, one pod at a time')
    t.same(at(pdb, 'spec', 'selector', 'matchLabels'), at(d, 'spec', 'selector', 'matchLabels'))
    const secret = objs.get('Secret/alert-enricher-database')
    if ('url' in database) t.same(at(secret, 'stringData'), { url: database.url }, 'database.url rendered into a Secret')
    else t.equal(secret, undefined, 'an existing Secret is used, not rendered')
  }
  const three = deployment(renderValid(t, { database: { existingSecret: 'db' }, replicaCount: 3, affinity: { nodeAffinity: { x: 1 } } }))
  t.equal(at(three, 'spec', 'replicas'), 3)
  t.same(at(podSpec(three), 'affinity'), { nodeAffinity: { x: 1 } }, 'a given affinity replaces the default anti-affinity')
  t.equal(at(statefulSet(renderValid(t, { replicaCount: 1 })), 'spec', 'replicas'), 1, 'without a database: the StatefulSet of one')
})

t.test('the pod is locked down and probed', async (t) => {
  const sts = statefulSet(renderValid(t))
  const pod = at(podSpec(sts), 'securityContext')
  t.match(pod, { runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } })
  const c = container(sts)
  t.match(c.securityContext, { runAsNonRoot: true, runAsUser: 10001, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } })
  t.same(list(c.ports), [{ name: 'http', containerPort: 9095, protocol: 'TCP' }])
  t.same(at(c, 'livenessProbe', 'httpGet'), { path: '/-/healthy', port: 'http' })
  t.same(at(c, 'readinessProbe', 'httpGet'), { path: '/-/ready', port: 'http' })
  t.match(c.resources, { requests: { cpu: String, memory: String }, limits: { memory: String } })
  t.equal(c.image, 'alert-enricher:0.1.0', 'tag defaults to appVersion')
  // Read-only root: the only writable mounts are the store and /tmp.
  t.equal(mountOf(sts, 'data')?.mountPath, '/data')
  t.equal(mountOf(sts, 'tmp')?.mountPath, '/tmp')
  t.ok(at(volumeOf(sts, 'tmp'), 'emptyDir'), '/tmp is an emptyDir')
  const claims = new Set(list(at(sts, 'spec', 'volumeClaimTemplates')).map((v) => at(v, 'metadata', 'name')))
  for (const m of list(c.volumeMounts)) t.ok(volumeOf(sts, String(m.name)) !== undefined || claims.has(m.name), `mount ${String(m.name)} has a volume`)
})

t.test('the Service selects the pod and exposes http', async (t) => {
  const objs = renderValid(t)
  const sts = statefulSet(objs)
  const svc = objs.get('Service/alert-enricher')
  const podLabels = at(sts, 'spec', 'template', 'metadata', 'labels') as Obj
  t.match(podLabels, at(svc, 'spec', 'selector') as Obj, 'Service selector matches the pod')
  t.match(podLabels, at(sts, 'spec', 'selector', 'matchLabels') as Obj, 'StatefulSet selector matches the pod')
  t.same(list(at(svc, 'spec', 'ports')), [{ name: 'http', port: 9095, targetPort: 'http', protocol: 'TCP' }])
})

t.test('an inline catalog becomes a ConfigMap mounted as a directory, and rolls the pod', async (t) => {
  const content = readFileSync(join(root, 'rules', 'catalog.yaml'), 'utf8')
  const objs = renderValid(t, { catalog: { content } })
  const cm = objs.get('ConfigMap/alert-enricher-catalog')
  t.same(parseYaml(String(at(cm, 'data', 'catalog.yaml'))), parseYaml(content), 'the catalog survives the round trip')
  const sts = statefulSet(objs)
  const mount = mountOf(sts, 'catalog')
  t.equal(mount?.subPath, undefined, 'a directory mount, so the ConfigMap symlink swap is visible')
  t.equal(mount?.readOnly, true)
  t.equal(envOf(sts).get('CATALOG_PATH'), `${String(mount?.mountPath)}/catalog.yaml`)
  t.equal(at(volumeOf(sts, 'catalog'), 'configMap', 'name'), 'alert-enricher-catalog')
  const sum = at(sts, 'spec', 'template', 'metadata', 'annotations', 'checksum/catalog')
  t.equal(sum, createHash('sha256').update(content).digest('hex'))
  const changed = statefulSet(renderValid(t, { catalog: { content: content + '\n# edited\n' } }))
  t.not(at(changed, 'spec', 'template', 'metadata', 'annotations', 'checksum/catalog'), sum, 'a changed catalog changes the pod template')
})

t.test('an existing ConfigMap is mounted, not rendered, and hot-reloaded', async (t) => {
  const objs = renderValid(t, { catalog: { existingConfigMap: 'team-catalog', key: 'alerts.yaml' } })
  t.notOk([...objs.keys()].some((k) => k.startsWith('ConfigMap/')), 'no ConfigMap of our own')
  const sts = statefulSet(objs)
  t.equal(at(volumeOf(sts, 'catalog'), 'configMap', 'name'), 'team-catalog')
  t.equal(envOf(sts).get('CATALOG_PATH'), '/etc/alert-enricher/catalog/alerts.yaml')
  t.equal(at(sts, 'spec', 'template', 'metadata', 'annotations', 'checksum/catalog'), undefined)
})

t.test('notifier and webhook secrets are mounted as files behind *_FILE variables', async (t) => {
  const sts = statefulSet(renderValid(t, {
    notifiers: { existingSecret: 'alert-enricher-notifiers', keys: { SLACK_WEBHOOK_URL_DEPLOYMENTS: '', SLACK_WEBHOOK_URL_PAYMENTS: 'payments' } },
    webhookAuth: { bearerToken: { existingSecret: 'am-token' } },
    adminAuth: { bearerToken: { existingSecret: 'admin-token' } }
  }))
  const env = envOf(sts)
  const mountPath = String(mountOf(sts, 'secrets')?.mountPath)
  t.equal(mountOf(sts, 'secrets')?.readOnly, true)
  const sources = list(at(volumeOf(sts, 'secrets'), 'projected', 'sources'))
  const items = new Map(sources.flatMap((s) => list(at(s, 'secret', 'items')).map((i) => [`${mountPath}/${String(i.path)}`, `${String(at(s, 'secret', 'name'))}:${String(i.key)}`])))
  const expected: Array<[string, string]> = [
    ['PAGERDUTY_ROUTING_KEY_FILE', 'alert-enricher-notifiers:pagerduty-routing-key'],
    ['PAGERDUTY_ESCALATION_ROUTING_KEY_FILE', 'alert-enricher-notifiers:pagerduty-escalation-routing-key'],
    ['SLACK_WEBHOOK_URL_ALERTS_FILE', 'alert-enricher-notifiers:slack-webhook-url-alerts'],
    ['SLACK_WEBHOOK_URL_INCIDENT_RESPONSE_FILE', 'alert-enricher-notifiers:slack-webhook-url-incident-response'],
    ['SLACK_WEBHOOK_URL_PAYMENTS_FILE', 'alert-enricher-notifiers:payments'],
    ['WEBHOOK_BEARER_TOKEN_FILE', 'am-token:token'],
    ['ADMIN_BEARER_TOKEN_FILE', 'admin-token:token']
  ]
  for (const [name, secretKey] of expected) t.equal(items.get(String(env.get(name))), secretKey, `${name} points at ${secretKey}`)
  t.notOk(env.has('SLACK_WEBHOOK_URL_DEPLOYMENTS_FILE'), 'an emptied key is not mounted')
  t.equal(items.size, expected.length, 'nothing else mounted')
  for (const name of ['PAGERDUTY_ROUTING_KEY', 'SLACK_WEBHOOK_URL_ALERTS', 'WEBHOOK_BEARER_TOKEN', 'ADMIN_BEARER_TOKEN']) t.notOk(env.has(name), `${name} itself is never set from values`)
})

t.test('the admin token alone mounts the secrets volume, from its own Secret and key', async (t) => {
  const sts = statefulSet(renderValid(t, { adminAuth: { bearerToken: { existingSecret: 'alert-enricher-admin', key: 'admin.token' } } }))
  const env = envOf(sts)
  const mount = mountOf(sts, 'secrets')
  t.equal(mount?.readOnly, true)
  t.equal(env.get('ADMIN_BEARER_TOKEN_FILE'), `${String(mount?.mountPath)}/admin/bearer-token`)
  const projected = at(volumeOf(sts, 'secrets'), 'projected') as Obj
  t.equal(projected.defaultMode, 288, '0440, like the other secrets')
  t.same(list(projected.sources), [{ secret: { name: 'alert-enricher-admin', items: [{ key: 'admin.token', path: 'admin/bearer-token' }] } }], 'only the admin token')
  for (const name of ['ADMIN_BEARER_TOKEN', 'WEBHOOK_BEARER_TOKEN_FILE', 'PAGERDUTY_ROUTING_KEY_FILE']) t.notOk(env.has(name), `${name} not set`)
})

t.test('runbookBaseUrl becomes RUNBOOK_BASE_URL only when set', async (t) => {
  const url = 'https://git.example.com/org/alert-enricher/blob/main/runbooks/'
  t.equal(envOf(statefulSet(renderValid(t, { runbookBaseUrl: url }))).get('RUNBOOK_BASE_URL'), url)
  t.notOk(envOf(statefulSet(renderValid(t, { runbookBaseUrl: '' }))).has('RUNBOOK_BASE_URL'), 'empty: not set, the catalog\'s own applies')
  const names = list(container(statefulSet(renderValid(t, { runbookBaseUrl: url }))).env).map((e) => e.name)
  t.equal(names.filter((n) => n === 'RUNBOOK_BASE_URL').length, 1, 'set once')
})

t.test('basic auth needs a username; the template says so if the schema is bypassed', async (t) => {
  const sts = statefulSet(renderValid(t, { webhookAuth: { basicAuth: { username: 'alertmanager', existingSecret: 'am-basic' } } }))
  t.equal(envOf(sts).get('WEBHOOK_BASIC_AUTH_USERNAME'), 'alertmanager')
  t.equal(envOf(sts).get('WEBHOOK_BASIC_AUTH_PASSWORD_FILE'), '/etc/alert-enricher/secrets/webhook/basic-auth-password')
  t.throws(() => renderChart(chart, { webhookAuth: { basicAuth: { existingSecret: 'am-basic' } } }), /username is required/)
})

t.test('kube-prometheus-stack integration', async (t) => {
  const objs = renderValid(t, kpsValues)
  const svc = objs.get('Service/alert-enricher')
  const sm = objs.get('ServiceMonitor/alert-enricher')
  t.equal(sm?.apiVersion, 'monitoring.coreos.com/v1')
  t.equal(at(sm, 'metadata', 'labels', 'release'), 'kube-prometheus-stack', 'additionalLabels for serviceMonitorSelector')
  t.match(at(svc, 'metadata', 'labels') as Obj, at(sm, 'spec', 'selector', 'matchLabels') as Obj, 'selects our Service')
  t.equal(at(sm, 'spec', 'endpoints', 0, 'port'), 'http')
  t.equal(at(sm, 'spec', 'endpoints', 0, 'path'), '/metrics')
  // The self-alerts select job=~"alert-enricher.*"; the job comes from this Service label.
  t.match(String(at(svc, 'metadata', 'labels', String(at(sm, 'spec', 'jobLabel')))), /^alert-enricher/)

  const rule = objs.get('PrometheusRule/alert-enricher')
  t.equal(at(rule, 'metadata', 'labels', 'release'), 'kube-prometheus-stack')
  const rulesFile = parseYaml(readFileSync(join(root, 'monitoring', 'alert-enricher.rules.yml'), 'utf8')) as Obj
  t.same(at(rule, 'spec', 'groups'), rulesFile.groups, 'the self-alerts, unchanged')

  const dash = objs.get('ConfigMap/alert-enricher-dashboard')
  t.equal(at(dash, 'metadata', 'labels', 'grafana_dashboard'), '1', 'the sidecar label')
  t.equal(at(dash, 'metadata', 'namespace'), 'grafana')
  t.equal(at(dash, 'metadata', 'annotations', 'grafana_folder'), 'Alerting')
  const dashboard = JSON.parse(readFileSync(join(root, 'monitoring', 'grafana-dashboard.json'), 'utf8')) as unknown
  t.same(JSON.parse(String(at(dash, 'data', 'alert-enricher.json'))), dashboard, 'the dashboard JSON, unchanged')

  const pdb = objs.get('PodDisruptionBudget/alert-enricher')
  t.equal(at(pdb, 'spec', 'maxUnavailable'), 1)
  t.equal(at(pdb, 'spec', 'minAvailable'), undefined)
  t.match(at(statefulSet(objs), 'spec', 'template', 'metadata', 'labels') as Obj, at(pdb, 'spec', 'selector', 'matchLabels') as Obj)
})

t.test('optional objects follow their values', async (t) => {
  const label = renderValid(t, { grafanaDashboard: { enabled: true, labelKey: 'dashboards', labelValue: 'alerting' } })
  t.equal(at(label.get('ConfigMap/alert-enricher-dashboard'), 'metadata', 'labels', 'dashboards'), 'alerting', 'label key and value configurable')
  t.equal(at(label.get('ConfigMap/alert-enricher-dashboard'), 'metadata', 'namespace'), 'monitoring', 'release namespace by default')
  const min = renderValid(t, { podDisruptionBudget: { enabled: true, minAvailable: 1 } }).get('PodDisruptionBudget/alert-enricher')
  t.same([at(min, 'spec', 'minAvailable'), at(min, 'spec', 'maxUnavailable')], [1, undefined], 'minAvailable takes precedence')
  const noSa = renderValid(t, { serviceAccount: { create: false } })
  t.notOk(noSa.has('ServiceAccount/alert-enricher'))
  t.equal(at(podSpec(statefulSet(noSa)), 'serviceAccountName'), 'default')
  const onlyRule = renderValid(t, { prometheusRule: { enabled: true } })
  t.ok(onlyRule.has('PrometheusRule/alert-enricher'))
  t.notOk(onlyRule.has('ServiceMonitor/alert-enricher'))
})

t.test('persistence and storage class', async (t) => {
  const none = statefulSet(renderValid(t, { persistence: { enabled: false } }))
  t.equal(at(none, 'spec', 'volumeClaimTemplates'), undefined)
  t.ok(at(volumeOf(none, 'data'), 'emptyDir'), 'an emptyDir instead')
  const dash = statefulSet(renderValid(t, { persistence: { storageClass: '-' } }))
  t.equal(at(dash, 'spec', 'volumeClaimTemplates', 0, 'spec', 'storageClassName'), '', '"-" disables dynamic provisioning')
  const fast = statefulSet(renderValid(t, { persistence: { storageClass: 'fast-ssd', size: '5Gi' } }))
  t.equal(at(fast, 'spec', 'volumeClaimTemplates', 0, 'spec', 'storageClassName'), 'fast-ssd')
  t.equal(at(fast, 'spec', 'volumeClaimTemplates', 0, 'spec', 'resources', 'requests', 'storage'), '5Gi')
})

t.test('names follow the release', async (t) => {
  const prod = renderValid(t, {}, { Name: 'prod', Namespace: 'ops' })
  t.ok(prod.has('StatefulSet/prod-alert-enricher'))
  t.equal(at(prod.get('Service/prod-alert-enricher'), 'metadata', 'labels', 'app.kubernetes.io/name'), 'alert-enricher', 'job label stays alert-enricher')
  const override = renderValid(t, { fullnameOverride: 'enricher' }, { Name: 'prod', Namespace: 'ops' })
  t.ok(override.has('StatefulSet/enricher'))
  const image = container(statefulSet(renderValid(t, { image: { repository: 'registry.example.com/alert-enricher', tag: '1.2.3' } })))
  t.equal(image.image, 'registry.example.com/alert-enricher:1.2.3')
})

t.test('NOTES.txt renders for every configuration', async (t) => {
  const notes = renderChart(chart, {}).notes
  t.match(notes, 'http://alert-enricher.monitoring.svc:9095/webhook')
  t.match(notes, /WARNING: \/webhook accepts unauthenticated requests/)
  t.match(notes, /bundled in the image/)
  t.match(notes, /WARNING: \/api\/v1\/deliveries, replay and POST \/-\/reload accept unauthenticated requests/)
  t.match(notes, /Set runbookBaseUrl/)
  const full = renderChart(chart, {
    ...kpsValues,
    notifiers: { existingSecret: 'n' },
    webhookAuth: { bearerToken: { existingSecret: 'tok' } },
    adminAuth: { bearerToken: { existingSecret: 'admin-tok' } },
    catalog: { existingConfigMap: 'c' },
    runbookBaseUrl: 'https://git.example.com/runbooks/'
  }).notes
  t.match(full, /credentials_file/)
  t.match(full, /PAGERDUTY_ROUTING_KEY <- key "pagerduty-routing-key"/)
  t.match(full, /hot-reloaded/)
  t.match(full, "get secret admin-tok -o jsonpath='{.data.token}'")
  t.match(full, 'curl -s -H "Authorization: Bearer $TOKEN" localhost:9095/api/v1/deliveries?state=dead')
  t.match(full, 'Runbook links resolve against https://git.example.com/runbooks/')
  t.notMatch(full, /WARNING/)
  t.match(renderChart(chart, { prometheusRule: { enabled: true }, persistence: { enabled: false } }).notes, /AlertEnricherDown fires[\s\S]*persistence is disabled/)
})
