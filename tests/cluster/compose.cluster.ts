// docker-compose.temporal.yml cannot run here (no Docker), so this checks what can be checked without
// it: the file parses, its services hang together, and its versions and settings are the ones
// scripts/cluster/up.sh runs with.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { searchAttributeFlags } from '../../workflows/searchAttributes';
import { DEV_SERVER_TUNING } from '../../support/temporalServer';

const REPO = path.resolve(__dirname, '..', '..');
const COMPOSE = path.join(REPO, 'docker-compose.temporal.yml');

interface ComposeService {
  image: string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  ports?: string[];
}

/** YAML → JSON with PyYAML (the project has no YAML parser of its own). */
function loadYaml(file: string): unknown {
  const json = execFileSync(
    'python3',
    ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', file],
    { encoding: 'utf8' },
  );
  return JSON.parse(json);
}

function versions(): { server: string; cli: string; ui: string } {
  const out = execFileSync(
    'bash',
    ['-c', 'source scripts/versions.sh; echo "$TEMPORAL_SERVER_VERSION $TEMPORAL_CLI_VERSION"'],
    { cwd: REPO, encoding: 'utf8' },
  );
  const [server, cli] = out.trim().split(' ');
  // The Web UI version is the one the pinned CLI embeds, noted beside it.
  const ui = /Web UI (\d+\.\d+\.\d+)/.exec(
    fs.readFileSync(path.join(REPO, 'scripts', 'versions.sh'), 'utf8'),
  )?.[1];
  return { server: server!, cli: cli!, ui: ui! };
}

/** `repo/name:${VAR:-default}` → the default tag. */
function defaultTag(image: string): string {
  const m = /:\$\{[A-Z_]+:-([^}]+)\}$/.exec(image) ?? /:([^:$]+)$/.exec(image);
  if (!m) throw new Error(`no tag in ${image}`);
  return m[1]!;
}

describe('docker-compose.temporal.yml', () => {
  const compose = loadYaml(COMPOSE) as { services: Record<string, ComposeService> };
  const services = compose.services;
  const upSh = fs.readFileSync(path.join(REPO, 'scripts', 'cluster', 'up.sh'), 'utf8');
  const libSh = fs.readFileSync(path.join(REPO, 'scripts', 'cluster', 'lib.sh'), 'utf8');
  const v = versions();

  it('has the server on PostgreSQL, the Web UI, the admin tools, the schema and the registration job', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'postgresql',
        'temporal',
        'temporal-admin-tools',
        'temporal-register',
        'temporal-schema',
        'temporal-ui',
      ].sort(),
    );
    for (const [name, service] of Object.entries(services)) {
      expect({ name, image: typeof service.image }).toEqual({ name, image: 'string' });
      for (const dep of Object.keys(service.depends_on ?? {})) expect(Object.keys(services)).toContain(dep);
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(fs.existsSync(path.join(REPO, source))).toBe(true);
      }
    }
  });

  it('pins the versions of scripts/versions.sh, on the images Temporal still publishes', () => {
    expect(services.temporal!.image).toMatch(/^temporalio\/server:/);
    expect(defaultTag(services.temporal!.image)).toBe(v.server);
    // Admin-tools tags name the server version first: <server>-tctl-<version>-cli-<version>.
    for (const name of ['temporal-schema', 'temporal-register', 'temporal-admin-tools']) {
      expect({ name, image: services[name]!.image }).toEqual({
        name,
        image: expect.stringMatching(/^temporalio\/admin-tools:/),
      });
      expect({ name, tag: defaultTag(services[name]!.image) }).toEqual({
        name,
        tag: expect.stringMatching(
          new RegExp(`^${v.server.replace(/\./g, '\\.')}-tctl-[\\d.]+-cli-[\\d.]+$`),
        ),
      });
    }
    expect(services.temporal!.depends_on).toEqual({
      'temporal-schema': { condition: 'service_completed_successfully' },
    });
    expect(defaultTag(services['temporal-ui']!.image)).toBe(v.ui);
    expect(defaultTag(services.postgresql!.image)).toBe('15');
  });

  it('runs with the settings of scripts/cluster/up.sh', () => {
    const env = services.temporal!.environment!;
    expect(env.DB).toBe('postgres12');
    expect(upSh).toContain('pluginName: postgres12');
    // The schema job applies the same schemas with the same tool and plugin as up.sh.
    expect(services['temporal-schema']!.volumes).toContain(
      './scripts/cluster/schema.sh:/scripts/schema.sh:ro',
    );
    const schemaSh = fs.readFileSync(path.join(REPO, 'scripts', 'cluster', 'schema.sh'), 'utf8');
    for (const sh of [upSh, schemaSh]) {
      expect(sh).toContain('--plugin postgres12');
      expect(sh).toMatch(/setup-schema -v 0\.0/);
      expect(sh).toMatch(/update-schema -d "\$[A-Za-z_{}]*(SCHEMA_DIR|schema_dir)[}]?\/\$kind\/versioned"/);
    }
    // History shards, fixed for the life of a database.
    expect(upSh).toContain(`CLUSTER_HISTORY_SHARDS:-${env.NUM_HISTORY_SHARDS}}`);
    // Namespace and retention, the same on both sides: register.sh creates the namespace.
    const register = services['temporal-register']!.environment!;
    expect(register.TEMPORAL_NAMESPACE).toBe('default');
    expect(upSh).toContain(`TEMPORAL_RETENTION=${register.TEMPORAL_RETENTION} bash "$here/register.sh"`);
    // The same dynamic config file.
    expect(services.temporal!.volumes).toContain(
      './scripts/cluster/dynamicconfig.yaml:/etc/temporal/config/dynamicconfig/cluster.yaml:ro',
    );
    expect(env.DYNAMIC_CONFIG_FILE_PATH).toBe('config/dynamicconfig/cluster.yaml');
    expect(upSh).toContain('filepath: "$here/dynamicconfig.yaml"');
    // The frontend on the port up.sh gives it.
    expect(services.temporal!.ports).toContain('127.0.0.1:${CLUSTER_TEMPORAL_PORT:-7243}:7233');
    expect(libSh).toContain('temporal_port="${CLUSTER_TEMPORAL_PORT:-7243}"');
  });

  it('registers the search attributes of workflows/searchAttributes.ts, with the script up.sh runs', () => {
    expect(services['temporal-register']!.volumes).toContain(
      './scripts/cluster/register.sh:/scripts/register.sh:ro',
    );
    const listed = execFileSync('sh', [path.join(REPO, 'scripts', 'cluster', 'register.sh'), '--list'], {
      encoding: 'utf8',
    });
    expect(listed.trim().split('\n')).toEqual(searchAttributeFlags());
  });

  it('the dynamic config is valid YAML with the tuning the dev server runs with', () => {
    const dc = loadYaml(path.join(REPO, 'scripts', 'cluster', 'dynamicconfig.yaml')) as Record<
      string,
      Array<{ value: unknown }>
    >;
    const devValues = DEV_SERVER_TUNING.filter((_, i, all) => all[i - 1] === '--dynamic-config-value');
    expect(devValues.length).toBeGreaterThan(0);
    for (const pair of devValues) {
      const [key, value] = pair.split('=') as [string, string];
      expect({ key, value: dc[key]?.[0]?.value }).toEqual({ key, value: JSON.parse(value) });
    }
  });
});
