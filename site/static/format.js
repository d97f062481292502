// Formatting helpers: token amounts, dates, and an event's rules in plain words.

const ZERO = '0x0000000000000000000000000000000000000000';

// formatAmount turns a base-unit decimal string into "12.50 tUSD".
export function formatAmount(units, token) {
  const d = token.decimals;
  let v = BigInt(units || '0');
  const neg = v < 0n;
  if (neg) v = -v;
  const base = 10n ** BigInt(d);
  const whole = v / base;
  let frac = (v % base).toString().padStart(d, '0').replace(/0+$/, '');
  if (frac.length < 2 && d >= 2) frac = frac.padEnd(2, '0');
  return (neg ? '-' : '') + whole.toString() + (frac ? '.' + frac : '') + ' ' + token.symbol;
}

// parseAmount turns "12.5" into base units (a BigInt); throws on anything else.
export function parseAmount(text, token) {
  const s = String(text).trim();
  if (!/^\d+(\.\d+)?$/.test(s)) throw new Error('Enter an amount like 55 or 55.50');
  const [w, f = ''] = s.split('.');
  if (f.length > token.decimals) throw new Error(`At most ${token.decimals} decimals`);
  return BigInt(w) * 10n ** BigInt(token.decimals) + BigInt(f.padEnd(token.decimals, '0') || '0');
}

export function formatDate(unix) {
  if (!unix) return '';
  return new Date(unix * 1000).toLocaleString(undefined, {
    weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

export function short(addr) {
  return addr ? addr.slice(0, 6) + '…' + addr.slice(-4) : '';
}

const ROLES = ['Originator', 'Artist', 'Promoter', 'Venue', 'Other'];

export function roleName(role) { return ROLES[role] || 'Other'; }

function pct(bps) {
  const p = bps / 100;
  return (Number.isInteger(p) ? p.toString() : p.toFixed(2)) + '%';
}

// resaleCap is the most a ticket of this tier may be resold for (base units, BigInt).
export function resaleCap(ev, tier) {
  const face = BigInt(ev.tiers[tier].faceValue);
  return face + (face * BigInt(ev.maxResaleMarkupBps)) / 10000n;
}

// resaleSplit divides a resale at `price` (BigInt base units) as EventTicket does: above face
// value the seller keeps their share of the markup, the parties split the rest by basis
// points (the last takes the remainder).
export function resaleSplit(ev, tier, price) {
  const face = BigInt(ev.tiers[tier].faceValue);
  const markup = price > face ? price - face : 0n;
  const toParties = markup - (markup * BigInt(ev.sellerMarkupShareBps)) / 10000n;
  let rest = toParties;
  const parties = ev.splits.map((s, i) => {
    const amount = i === ev.splits.length - 1 ? rest : (toParties * BigInt(s.bps)) / 10000n;
    rest -= amount;
    return { role: s.role, account: s.account, amount };
  });
  return { seller: price - toParties, parties };
}

// rules lists an event's rules as sentences a fan understands.
export function rules(ev, token) {
  const out = [];
  const face = ev.tiers.map((t) => formatAmount(t.faceValue, token));
  if (ev.maxResaleMarkupBps > 0) {
    out.push(`Resale allowed up to ${pct(ev.maxResaleMarkupBps)} above face value` +
      (ev.tiers.length ? ` (at most ${formatAmount(resaleCap(ev, 0).toString(), token)} for ${ev.tiers[0].name})` : '') + '.');
  } else {
    out.push('Resale only at face value or less.');
  }
  if (ev.sellerMarkupShareBps < 10000) {
    out.push(`On a resale above face value the seller keeps ${pct(ev.sellerMarkupShareBps)} of the markup; the rest goes to the people below.`);
  }
  if (ev.superfanPresaleEndsAt) out.push(`Superfan presale until ${formatDate(ev.superfanPresaleEndsAt)}: only the artist's superfans may buy new tickets.`);
  if (ev.presaleEndsAt) out.push(`Fan presale until ${formatDate(ev.presaleEndsAt)}: only the artist's fans and superfans may buy new tickets.`);
  if (ev.resaleClosesAt) out.push(`Resale closes ${formatDate(ev.resaleClosesAt)}.`);
  out.push(ev.maxPerBuyer > 0 ? `At most ${ev.maxPerBuyer} ticket${ev.maxPerBuyer === 1 ? '' : 's'} per buyer.` : 'No limit per buyer.');
  out.push(ev.giftsAllowed ? 'You may gift your ticket to a friend.' : 'Tickets cannot be gifted.');
  if (ev.splits && ev.splits.length) {
    out.push('Who gets paid: ' + ev.splits.map((s) => `${roleName(s.role)} ${pct(s.bps)}`).join(', ') + '.');
  }
  if (ev.discounts && ev.discounts.length) out.push('Prices may drop closer to the show (discount schedule).');
  void face;
  return out;
}

export function isNative(ev) { return !ev.currency || ev.currency.toLowerCase() === ZERO; }

// ---- buyer categories (relay/README.md, "Categories and identity") ----

// CATEGORY_NAMES are the buyer categories by number, as EventTicket and OracleHub count them.
export const CATEGORY_NAMES = ['unclassified', 'fan', 'superfan', 'scalper', 'bot'];

// artistOf is whose fans an event counts, as OracleHub.registerEvent decides: the first
// party with the artist role, else the originator.
export function artistOf(ev) {
  const a = (ev.splits || []).find((s) => s.role === 1) || (ev.splits || [])[0];
  return a ? a.account.toLowerCase() : '';
}

// eventCategory is the category an event reads for a buyer (OracleHub.categoryOf) from what
// is attested on chain (sp_category's `attested`): bot or scalper for every artist, else fan
// or superfan of the event's artist, else unclassified. Expired attestations do not count.
export function eventCategory(ev, view, now = Date.now() / 1000) {
  const live = ((view && view.attested) || []).filter((a) => a.expiry > now);
  const global = live.find((a) => !a.artist || a.artist === ZERO);
  if (global && (global.category === 3 || global.category === 4)) return global.category;
  const artist = artistOf(ev);
  const mine = live.find((a) => a.artist && a.artist.toLowerCase() === artist);
  return mine && (mine.category === 1 || mine.category === 2) ? mine.category : 0;
}

// presale says whether a buyer of category `cat` may buy new tickets now (EventTicket's
// _checkPresale) and, if not, from when: {open, opensAt}.
export function presale(ev, cat, now = Date.now() / 1000) {
  if (!ev.presaleEndsAt || now >= ev.presaleEndsAt || cat === 2) return { open: true, opensAt: 0 };
  const opensAt = cat === 1 ? ev.superfanPresaleEndsAt : ev.presaleEndsAt;
  return now >= opensAt ? { open: true, opensAt: 0 } : { open: false, opensAt };
}

// presaleText is the presale in words for this buyer: who may buy now and whether they may.
export function presaleText(ev, cat, now = Date.now() / 1000) {
  if (!ev.presaleEndsAt || now >= ev.presaleEndsAt) return '';
  const who = now < ev.superfanPresaleEndsAt ? 'Superfan presale: only the artist\'s superfans may buy now'
    : 'Fan presale: only the artist\'s fans and superfans may buy now';
  const p = presale(ev, cat, now);
  const you = `you are ${cat === 0 ? 'not yet a fan of this artist (unclassified)' : 'a ' + CATEGORY_NAMES[cat] + (cat <= 2 ? ' of this artist' : '')}`;
  return `${who}. ${p.open ? `You may buy now: ${you}.` : `You may buy from ${formatDate(p.opensAt)}: ${you}.`}`;
}
