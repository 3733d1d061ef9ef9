// A real store for the browser tests: loyalty-hq (embedded SQLite) with the
// demo program and members, staff accounts made with `loyalty-hq staff
// add`, one terminal provisioned over mutual TLS, and loyaltyd serving the
// counter page; Debian's chromium driven by playwright-core. Processes are
// the build's binaries (LOYALTY_BUILD_DIR, default build/release).
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
const build = path.resolve(repo, process.env.LOYALTY_BUILD_DIR || 'build/release');
const bin = {
  hq: path.join(build, 'hq/loyalty-hq'),
  daemon: path.join(build, 'terminal/loyaltyd'),
  ctl: path.join(build, 'terminal/loyaltyctl'),
};
export const shots = process.env.LOYALTY_SCREENSHOTS || path.join(build, 'screenshots');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function run(cmd, args, input) {
  const r = spawnSync(cmd, args, {input, encoding: 'utf8'});
  if (r.status !== 0)
    throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export class Store {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'counter-'));
    this.procs = {};
  }

  hq(...args) {
    return run(bin.hq, [...args, '--dir', path.join(this.dir, 'hq')]);
  }

  // `loyalty-hq staff add` with the PIN on standard input.
  addStaff(id, name, role, pin, stores = 'S001') {
    return run(bin.hq, ['staff', 'add', id, '--name', name, '--role', role, '--stores', stores,
      '--dir', path.join(this.dir, 'hq')], pin + '\n');
  }

  async start() {
    const hqDir = path.join(this.dir, 'hq');
    fs.mkdirSync(path.join(this.dir, 'terminal'), {recursive: true});
    this.hqPort = await freePort();
    this.hq('init');
    this.hq('publish', path.join(repo, 'examples/programs/coffee-chain.json'), '--effective-from', '0');
    this.hq('import-members', path.join(repo, 'examples/members/demo-members.csv'));
    this.hq('terminals', 'add', 'S001', 'T01', '--url', `https://127.0.0.1:${this.hqPort}`,
      '--out', path.join(this.dir, 'bundle.json'));
    this.addStaff('1001', '王芳', 'clerk', '2468');
    this.addStaff('9001', '陈主管', 'supervisor', '1357');
    this.addStaff('1002', '李娜', 'clerk', '1122');
    this.startHq();
    run(bin.ctl, ['provision', path.join(this.dir, 'bundle.json'), '--to',
      path.join(this.dir, 'terminal/hq-bundle.json')]);
    const t = path.join(this.dir, 'terminal');
    this.procs.daemon = spawn(bin.daemon, [
      '--store.time_zone', 'Asia/Shanghai', '--hq.bundle', path.join(t, 'hq-bundle.json'),
      '--data.database', path.join(t, 'loyaltyd.db'), '--api.token_file', path.join(t, 'api-token'),
      '--api.port', '0', '--api.port_file', path.join(t, 'port'), '--hq.sync_interval_ms', '200',
      '--counter.lockout_s', '60',
    ], {stdio: ['ignore', 'ignore', fs.openSync(path.join(this.dir, 'loyaltyd.log'), 'a')]});
    const portFile = path.join(t, 'port');
    for (let i = 0; i < 100 && !fs.existsSync(portFile); i++) await sleep(100);
    this.port = Number(fs.readFileSync(portFile, 'utf8').trim());
    this.token = fs.readFileSync(path.join(t, 'api-token'), 'utf8').trim();
    this.url = `http://127.0.0.1:${this.port}/counter/`;
    await this.until(async () => {
      const s = await this.status();
      return s.online && s.program && s.members_cached >= 3;
    }, 'the terminal to sync the program and members from HQ');
  }

  startHq() {
    this.procs.hq = spawn(bin.hq, ['serve', '--dir', path.join(this.dir, 'hq'), '--port',
      String(this.hqPort), '--admin-port', '0'],
    {stdio: ['ignore', 'ignore', fs.openSync(path.join(this.dir, 'hq.log'), 'a')]});
  }

  async stopHq() {
    const p = this.procs.hq;
    delete this.procs.hq;
    await new Promise((r) => {
      p.on('exit', r);
      p.kill('SIGTERM');
    });
  }

  // The POS's call: the API token, and an Idempotency-Key for a write.
  async api(method, target, body, key) {
    const headers = {Authorization: 'Bearer ' + this.token, 'Content-Type': 'application/json'};
    if (key) headers['Idempotency-Key'] = key;
    const res = await fetch(`http://127.0.0.1:${this.port}${target}`, {
      method, headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return {status: res.status, body: await res.json().catch(() => null)};
  }

  async status() {
    return (await this.api('GET', '/v1/status')).body;
  }

  // Waits for `check` to hold (HQ's feed reaching the terminal).
  async until(check, what, ms = 20000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await check().catch(() => false)) return;
      await sleep(100);
    }
    throw new Error('timed out waiting for ' + what + '; logs in ' + this.dir);
  }

  async stop() {
    for (const p of Object.values(this.procs)) p.kill('SIGTERM');
    this.procs = {};
  }
}

export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function screenshot(page, name) {
  fs.mkdirSync(shots, {recursive: true});
  await page.screenshot({path: path.join(shots, name + '.png')});
}

// Signs in through the page as a person would: staff number, PIN, Enter.
export async function signIn(page, staffId, pin) {
  await page.getByLabel('工号').fill(staffId);
  await page.getByLabel('PIN 码').fill(pin);
  await page.getByLabel('PIN 码').press('Enter');
}
