// The counter page's words, in Chinese (the default) and English, and the
// clerk's words for each refusal the terminal can answer with.
const WORDS = {
  app_title: ['会员服务台', 'Member desk'],
  skip: ['跳到主要内容', 'Skip to the main content'],
  sign_in_title: ['员工登录', 'Staff sign-in'],
  staff_id: ['工号', 'Staff number'],
  pin: ['PIN 码', 'PIN'],
  sign_in: ['登录', 'Sign in'],
  sign_out: ['退出', 'Sign out'],
  signed_out: ['已退出登录，请重新登录', 'Signed out; please sign in again'],
  supervisor: ['主管', 'supervisor'],
  clerk: ['店员', 'clerk'],
  find_title: ['查找会员', 'Find a member'],
  find_label: ['扫描会员码，或输入手机号', 'Scan the member code, or type a phone number'],
  find: ['查找', 'Find'],
  online: ['在线', 'Online'],
  offline: ['离线：交易会在恢复联网后同步', 'Offline: sales sync when the network is back'],
  offline_short: ['离线', 'Offline'],
  refused: ['总部拒绝此终端：请联系总部', 'HQ refuses this terminal: call HQ'],
  pending: ['待同步 {n} 笔', '{n} waiting to sync'],
  blocked: ['该会员已被冻结，不能使用会员权益', 'This membership is blocked: no loyalty benefits'],
  tier: ['等级', 'Tier'],
  next_tier: ['距离 {name}', 'Towards {name}'],
  points: ['积分', 'Points'],
  pending_sync: ['其中 {n} 待同步', '{n} of them not yet synced'],
  expiring: ['{points} 分将于 {date} 过期', '{points} expire on {date}'],
  debt: ['欠分', 'Points owed'],
  stored_value: ['储值余额', 'Stored value'],
  base_bonus: ['本金 {base}，赠送 {bonus}', 'paid {base}, bonus {bonus}'],
  stamps: ['集章', 'Stamps'],
  passes: ['次卡/月卡', 'Passes'],
  pass_uses: ['今日已用 {used}', 'used today: {used}'],
  vouchers: ['可用券', 'Vouchers'],
  flags: ['总部提示', 'HQ notes'],
  phone: ['手机', 'Phone'],
  card: ['卡号', 'Card'],
  none: ['无', 'none'],
  actions: ['业务', 'Services'],
  redeem: ['兑换礼品', 'Redeem a reward'],
  redeem_it: ['兑换', 'Redeem'],
  redeem_confirm: ['用 {points} 积分为 {member} 兑换「{reward}」？', 'Redeem “{reward}” for {member} with {points} points?'],
  stock_left: ['库存 {n}', '{n} in stock'],
  no_stock_limit: ['不限量', 'no stock limit'],
  not_today: ['今日不可兑换', 'not redeemable today'],
  min_tier: ['{tier} 及以上', '{tier} and above'],
  top_up: ['储值充值', 'Top up'],
  top_up_amount: ['充值金额（元）', 'Amount (yuan)'],
  top_up_confirm: ['为 {member} 充值 {amount}？', 'Top up {amount} for {member}?'],
  bad_amount: ['请输入金额，例如 100 或 100.50', 'Enter an amount such as 100 or 100.50'],
  cancel: ['取消', 'Cancel'],
  confirm: ['确认', 'Confirm'],
  receipt: ['小票', 'Receipt'],
  close: ['关闭', 'Close'],
  print: ['打印', 'Print'],
  done: ['已完成', 'Done'],
  enrol: ['新会员入会', 'Enrol a member'],
  enrol_it: ['入会', 'Enrol'],
  name: ['姓名', 'Name'],
  birthday: ['生日', 'Birthday'],
  referrer: ['推荐人会员号（可不填）', 'Referrer’s member number (optional)'],
  activity: ['会员活动', 'Activities'],
  activity_kind: ['活动类型', 'Kind'],
  check_in: ['签到', 'Check-in'],
  review: ['评价', 'Review'],
  survey: ['问卷', 'Survey'],
  program_activity: ['活动任务', 'Programme task'],
  activity_name: ['任务', 'Task'],
  record: ['记录', 'Record'],
  activity_confirm: ['为 {member} 记录「{what}」？', 'Record “{what}” for {member}?'],
  receipts_title: ['小票查询与退货', 'Receipts and returns'],
  receipt_id: ['小票号', 'Receipt number'],
  look_up: ['查询', 'Look up'],
  reprint: ['重打小票', 'Reprint'],
  return_qty: ['退 {name} 的数量（可退 {left}）', 'Units of {name} to return ({left} left)'],
  return_it: ['退货', 'Return'],
  return_confirm: ['退回所选商品（小票 {id}）？积分会相应扣回。', 'Return the chosen items of receipt {id}? Their points are taken back.'],
  return_none: ['请填写要退的数量', 'Enter how many units to return'],
  nothing_left: ['该小票已无可退商品', 'Nothing left to return on this receipt'],
  supervisor_needed: ['退货需主管登录', 'A supervisor signs in to take returns'],
  voided: ['该交易已作废', 'This sale was voided'],
  network_error: ['连接终端失败，请重试', 'Could not reach the terminal; try again'],
  offline_allowance: ['离线今日还可兑换 {n} 分', 'Offline: {n} points may still be redeemed today'],
  locked_for: ['输错次数过多，已锁定，请 {min} 分钟后再试', 'Locked after wrong PINs; try again in {min} min'],
  failures_left: ['工号或 PIN 码错误（还可尝试 {n} 次）', 'Wrong staff number or PIN ({n} tries left)'],
};

// Refusals (the problem's slug) in the clerk's words; others show the
// terminal's own sentence.
const PROBLEMS = {
  'sign-in-failed': ['工号或 PIN 码错误', 'Wrong staff number or PIN'],
  'staff-locked': ['输错次数过多，账号已锁定', 'Locked after too many wrong PINs'],
  'sign-in-paused': ['本机登录失败过多，请稍后再试', 'Too many wrong sign-ins here; wait a moment'],
  'staff-disabled': ['账号已被总部停用', 'HQ disabled this account'],
  'signed-out': ['已退出登录，请重新登录', 'Signed out; please sign in again'],
  'csrf': ['页面已过期，请刷新', 'The page is out of date; reload it'],
  'supervisor-only': ['需要主管登录', 'A supervisor must sign in for this'],
  'unknown-member': ['找不到该会员：请核对，或办理入会', 'No such member: check it, or enrol them'],
  'invalid-member-code': ['无法识别的会员码，请重新扫描', 'Not a member code; scan again'],
  'member-code-expired': ['会员码已过期，请顾客刷新 App', 'The code has expired; ask the member to refresh the app'],
  'member-code-forged': ['会员码无效，请改用会员卡', 'The code is not valid; ask for the member card'],
  'member-code-blocked': ['该卡/码已挂失，请用 App 码或手机号', 'This card or code is reported lost; use the app code or phone'],
  'member-code-replayed': ['该码已使用过，请顾客刷新', 'This code was already used; ask for a fresh one'],
  'member-blocked': ['会员已冻结，不能办理', 'The membership is blocked'],
  'insufficient-points': ['积分不足或等级不够', 'Not enough points, or tier too low'],
  'out-of-stock': ['该礼品本店已无库存', 'None of this reward left in this store'],
  'offline-too-long': ['离线太久，请联网后再兑换', 'Offline too long; redeem when back online'],
  'offline-allowance-exceeded': ['已超出今日离线兑换额度', 'Over today’s offline redemption allowance'],
  'points-spent-elsewhere': ['积分已在别处使用，余额不足', 'The points were spent elsewhere'],
  'clock-behind': ['终端时钟异常，请校准时间', 'The terminal clock is behind; correct it'],
  'no-program': ['未安装会员方案', 'No loyalty program installed'],
  'storage-failure': ['终端存储故障，请重试或联系技术支持', 'Terminal storage failed; retry or call support'],
  'receipt-not-found': ['本机找不到该小票，请核对小票号', 'No such receipt here; check the number'],
  'not-returnable': ['该小票不是消费，不能退货', 'Not a purchase: nothing to return'],
  'already-voided': ['该交易已作废', 'This sale was voided'],
  'sale-refused-by-hq': ['总部拒绝了这笔交易，请联系客服', 'HQ refused this sale; refer to customer service'],
  'phone-taken': ['该手机号已是会员', 'This phone number already has a membership'],
  'unknown-referrer': ['推荐人会员号不存在或已冻结', 'No such referrer, or the referrer is blocked'],
  'busy': ['终端繁忙，请稍后重试', 'The terminal is busy; retry in a moment'],
};

let current = 'zh-CN';

export function setLang(l) {
  current = l === 'en' ? 'en' : 'zh-CN';
  document.documentElement.lang = current;
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
}

export function lang() {
  return current;
}

export function t(key, vars = {}) {
  const pair = WORDS[key];
  let s = pair ? pair[current === 'en' ? 1 : 0] : key;
  for (const [k, v] of Object.entries(vars)) s = s.replaceAll('{' + k + '}', String(v));
  return s;
}

// The clerk's sentence for a problem answer (RFC 9457 body).
export function problemText(p) {
  if (!p || typeof p !== 'object') return t('network_error');
  const slug = String(p.type || '').split('/').pop();
  if (slug === 'sign-in-failed' && p.failures_left > 0) return t('failures_left', {n: p.failures_left});
  if (slug === 'staff-locked' && p.retry_after_s) return t('locked_for', {min: Math.ceil(p.retry_after_s / 60)});
  let s = PROBLEMS[slug] ? PROBLEMS[slug][current === 'en' ? 1 : 0] : (p.detail || p.title || slug);
  if (p.max_points_now !== undefined) s += ' (' + t('offline_allowance', {n: p.max_points_now}) + ')';
  return s;
}
