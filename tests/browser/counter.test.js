// The counter page end to end: Debian's chromium, a real loyaltyd synced
// with a real loyalty-hq (stack.js). Each test saves screenshots.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import {after, before, test} from 'node:test';
import {Store, browser, screenshot, signIn} from './stack.js';

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let store;
let chrome;

before(async () => {
  store = new Store();
  await store.start();
  // One 10-yuan voucher left at this store's counter.
  store.hq('stock', 'S001', 'T01', 'voucher-10', '1');
  await store.until(async () => {
    const r = await store.api('GET', '/v1/rewards');
    return r.body.rewards[0].stock === 1;
  }, 'the stock delivery');
  chrome = await browser();
});

after(async () => {
  if (chrome) await chrome.close();
  if (store) await store.stop();
});

async function newPage(viewport = {width: 1024, height: 768}) {
  const context = await chrome.newContext({viewport, locale: 'zh-CN'});
  return context.newPage();
}

// axe-core in the page: no serious or critical violations.
async function checkAccessible(page, what) {
  // Evaluated through the DevTools protocol: the page's CSP allows no
  // script but its own.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => globalThis.axe.run(document));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`), [],
    `accessibility of ${what}`);
}

test('a clerk signs in, scans a card, redeems the last voucher, is refused the next, tops up',
  async () => {
    const page = await newPage();
    await page.goto(store.url);
    await checkAccessible(page, 'the sign-in screen');
    await screenshot(page, 'counter-sign-in');
    await signIn(page, '1001', '2468');
    await page.getByText('王芳 (店员)').waitFor();

    // A keyboard-wedge scanner types the card number and Enter.
    const find = page.getByLabel('扫描会员码，或输入手机号');
    await find.focus();
    await page.keyboard.type('9000000000010018\n');
    await page.getByRole('heading', {name: 'Wang Fang'}).waitFor();
    const member = page.locator('#member');
    assert.match(await member.innerText(), /600/);
    assert.match(await member.innerText(), /138\*\*\*\*8001/);
    await checkAccessible(page, 'the member screen');
    await screenshot(page, 'counter-member');

    await page.getByRole('button', {name: '兑换', exact: true}).click();
    await page.getByRole('button', {name: '确认'}).click();
    const receipt = page.locator('#receipt');
    await receipt.waitFor();
    assert.match(await receipt.innerText(), /S001-T01-/);
    await screenshot(page, 'counter-receipt');
    await page.getByRole('button', {name: '关闭'}).click();
    assert.match(await member.innerText(), /400/);
    assert.match(await member.innerText(), /10-yuan voucher/);
    assert.equal((await store.api('GET', '/v1/rewards')).body.rewards[0].stock, 0);

    // The next one: the store has none left, said in the clerk's words.
    await page.getByRole('button', {name: '兑换', exact: true}).click();
    await page.getByRole('button', {name: '确认'}).click();
    await page.getByText('该礼品本店已无库存').waitFor();
    assert.match(await member.innerText(), /400/);

    await page.getByRole('tab', {name: '储值充值'}).click();
    await page.getByLabel('充值金额（元）').fill('100.50');
    await page.getByRole('button', {name: '储值充值', exact: true}).last().click();
    await page.getByRole('button', {name: '确认'}).click();
    await receipt.waitFor();
    await page.getByRole('button', {name: '关闭'}).click();
    await page.getByText('¥100.50').first().waitFor();
    await screenshot(page, 'counter-top-up');

    // The sale reaches HQ, which knows the member's new stored value.
    await store.until(async () => JSON.parse(store.hq('member', 'M1001')).member.stored_value.base === 10050,
      'the top-up at HQ');
    // HQ shows who made each of them: the clerk signed in at the page.
    const made = JSON.parse(store.hq('member', 'M1001')).transactions;
    assert.deepEqual(made.map((t) => [t.kind, t.staff_id]).sort(),
      [['event', '1001'], ['redeem', '1001']]);
  });

test('the page is in English at the switch, and phone search finds the member', async () => {
  const page = await newPage({width: 1280, height: 800});
  await page.goto(store.url);
  await page.getByRole('button', {name: 'English'}).click();
  await page.getByLabel('Staff number').fill('1001');
  await page.getByLabel('PIN').fill('2468');
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.getByLabel('Scan the member code, or type a phone number').fill('13800138002');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', {name: 'Li Wei'}).waitFor();
  assert.match(await page.locator('#member').innerText(), /Stored value/);
  await screenshot(page, 'counter-english-tablet');
});

test('five wrong PINs lock the account, and the right PIN is refused while locked', async () => {
  const page = await newPage();
  await page.goto(store.url);
  for (let i = 1; i <= 4; i++) {
    await signIn(page, '1002', '0000');
    await page.getByText(`还可尝试 ${5 - i} 次`).waitFor();
  }
  await signIn(page, '1002', '0000');
  await page.getByText('已锁定').waitFor();
  await signIn(page, '1002', '1122');
  await page.getByText('已锁定').waitFor();
  assert.equal(await page.locator('#desk').isHidden(), true);
  await screenshot(page, 'counter-locked');
});

test('a member HQ blocked cannot be missed, and gets no services', async () => {
  store.hq('block', 'M1003', '--reason', 'card fraud report');
  await store.until(async () => (await store.api('GET', '/v1/members/M1003')).body.blocked,
    'the block to reach the terminal');
  const page = await newPage();
  await page.goto(store.url);
  await signIn(page, '1001', '2468');
  await page.getByLabel('扫描会员码，或输入手机号').fill('9000000000010034');
  await page.keyboard.press('Enter');
  await page.getByRole('alert').filter({hasText: '该会员已被冻结'}).waitFor();
  assert.equal(await page.locator('#actions').isHidden(), true);
  await screenshot(page, 'counter-blocked');
});

test('the banner says offline when HQ is stopped, and online again when it is back', async () => {
  const page = await newPage();
  await page.goto(store.url);
  await signIn(page, '1001', '2468');
  await page.locator('.banner.ok').waitFor();
  await store.stopHq();
  await page.locator('.banner.warn').filter({hasText: '离线'}).waitFor({timeout: 20000});
  // A member scanned now shows what they may still redeem offline today.
  await page.getByLabel('扫描会员码，或输入手机号').fill('9000000000010026');
  await page.keyboard.press('Enter');
  await page.getByText(/离线今日还可兑换 \d+ 分/).waitFor();
  await screenshot(page, 'counter-offline');
  store.startHq();
  await page.locator('.banner.ok').waitFor({timeout: 20000});
});

test('a supervisor returns one latte of a POS sale; a clerk may not', async () => {
  const basket = JSON.parse(fs.readFileSync(new URL('../../examples/baskets/morning-coffee.json',
    import.meta.url), 'utf8'));
  const sale = await store.api('POST', '/v1/transactions', {member_id: 'M1002', basket},
    'pos-sale-1');
  assert.equal(sale.status, 201);
  const receiptId = sale.body.receipt_id;

  // A clerk can look the receipt up and reprint it, not take it back.
  const clerk = await newPage();
  await clerk.goto(store.url);
  await signIn(clerk, '1001', '2468');
  await clerk.getByLabel('小票号').fill(receiptId);
  await clerk.getByLabel('小票号').press('Enter');
  await clerk.getByText('退货需主管登录').waitFor();
  const refused = await clerk.evaluate(async (id) => {
    const s = await (await fetch('/counter/api/session')).json();
    const r = await fetch('/counter/api/v1/returns', {method: 'POST', headers: {
      'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf, 'Idempotency-Key': 'clerk-try'},
    body: JSON.stringify({receipt_id: id, lines: [{line: 0, quantity: 1}]})});
    return [r.status, (await r.json()).type];
  }, receiptId);
  assert.equal(refused[0], 403);
  assert.match(refused[1], /supervisor-only$/);

  const page = await newPage();
  await page.goto(store.url);
  await signIn(page, '9001', '1357');
  await page.getByText('陈主管 (主管)').waitFor();
  await page.getByLabel('小票号').fill(receiptId);
  await page.getByRole('button', {name: '查询'}).click();
  const latte = page.getByLabel(/退 Latte M 的数量（可退 2）/);
  await latte.fill('1');
  await screenshot(page, 'counter-return');
  await page.getByRole('button', {name: '退货', exact: true}).click();
  await page.getByRole('button', {name: '确认'}).click();
  await page.locator('#receipt').waitFor();
  assert.match(await page.locator('#receipt').innerText(), /S001-T01-/);
  await page.getByRole('button', {name: '关闭'}).click();
  await page.getByLabel(/退 Latte M 的数量（可退 1）/).waitFor();
  const after = await store.api('GET', '/v1/transactions/' + receiptId);
  assert.equal(after.body.returnable[0].returned, 1);
});

test('a new member enrols at the counter with a referrer and finishes the newcomer task',
  async () => {
    const page = await newPage();
    await page.goto(store.url);
    await signIn(page, '1001', '2468');
    await page.getByRole('button', {name: '新会员入会'}).click();
    await page.getByLabel('手机', {exact: true}).fill('13900000088');
    await page.getByLabel('姓名').fill('赵敏');
    await page.getByLabel('推荐人会员号（可不填）').fill('M1001');
    await checkAccessible(page, 'the enrolment form');
    await page.getByRole('button', {name: '入会', exact: true}).click();
    await page.locator('#receipt').waitFor();
    await page.getByRole('button', {name: '关闭'}).click();
    await page.getByRole('heading', {name: '赵敏'}).waitFor();
    // The same phone again is refused, in the clerk's words.
    await page.getByRole('button', {name: '新会员入会'}).click();
    await page.getByLabel('手机', {exact: true}).fill('13900000088');
    await page.getByRole('button', {name: '入会', exact: true}).click();
    await page.getByText('该手机号已是会员').waitFor();
    await page.getByRole('button', {name: '取消'}).click();

    await page.getByRole('tab', {name: '会员活动'}).click();
    await page.getByLabel('活动类型').selectOption('activity');
    await page.getByLabel('任务').selectOption('newcomer-tasks');
    await page.getByRole('button', {name: '记录'}).click();
    await page.getByRole('button', {name: '确认'}).click();
    await page.locator('#receipt').waitFor();
    await page.getByRole('button', {name: '关闭'}).click();
    // The task's reward: a welcome voucher on the card.
    await page.locator('#member').getByText('5-yuan welcome voucher').waitFor();
    await screenshot(page, 'counter-enrol-activity');
    const id = (await store.api('POST', '/v1/members/scan', {phone: '13900000088'})).body;
    assert.equal(id.name, '赵敏');
    assert.equal(id.vouchers.length, 1);
  });

test('without a session the API answers 401 and never with the token', async () => {
  const res = await fetch(store.url.replace('/counter/', '/counter/api/v1/status'));
  assert.equal(res.status, 401);
  const page = await newPage();
  await page.goto(store.url);
  const html = await page.content();
  assert.equal(html.includes(store.token), false);
  // A write without the CSRF token is refused even with the cookie.
  await signIn(page, '1001', '2468');
  await page.getByText('王芳 (店员)').waitFor();
  const status = await page.evaluate(async () => (await fetch('/counter/api/v1/members/scan', {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"phone":"13800138001"}',
  })).status);
  assert.equal(status, 403);
});
