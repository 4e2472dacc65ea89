// Reads the strace log of a driver and its browser (webdriver.mjs traces connect, sendto,
// sendmsg and sendmmsg with -yy, so each socket shows its protocol and, once connected, both
// ends) and says which network calls went anywhere but loopback.
//
// What counts as traffic:
// - a connect() of a TCP (or any non-UDP) socket to an address that is not loopback: that sends
//   a SYN;
// - a send to an address that is not loopback, given in the call or as the connected socket's
//   peer (a DNS query on a connected UDP socket, for example);
// - a connect() of a UDP socket to an address that is not loopback, unless it is one of
//   ROUTE_PROBES. A UDP connect() sends no packet (the kernel only picks a route and a source
//   address); browsers use it to learn whether IPv6 is reachable. Only the probes seen and
//   understood are let through, so a new one fails the check until someone looks at it.
// Unix sockets and netlink (the kernel) are not network traffic.
//
// Not seen: data written with write()/writev() on a UDP socket (tracing every write would slow
// the browser down a lot); such a socket's connect() is still checked as above.

import { readFileSync } from 'node:fs';

/**
 * UDP connects that send nothing: Chromium's IPv6 reachability probe (its host resolver asks
 * the kernel for a route to Google's public DNS address, port 443, and reads the source
 * address back).
 */
export const ROUTE_PROBES = ['[2001:4860:4860::8888]:443'];

/** True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
export function isLoopback(host) {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (/^127\.\d+\.\d+\.\d+$/.test(h)) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const mapped = h.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
  return Boolean(mapped && mapped[1].startsWith('127.'));
}

const INET = /sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)/;
const INET6 = /sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"/;
// The socket as -yy shows it: `12<TCP:[127.0.0.1:58232->127.0.0.1:42635]>` or `11<UDPv6:[643851]>`.
const FD = /^(\w+)\(\d+<(\w+):\[(.*?)\]>/;

/**
 * Parses an strace log. Returns `{ calls, traffic, probes }`: every network call that named an
 * address or a connected peer (`{ pid, call, proto, to, line }`), those that are traffic to a
 * non-loopback address, and the UDP route probes let through.
 */
export function readTraffic(file) {
  const calls = [];
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const m = raw.match(/^(\d+)\s+(.*)$/);
    if (!m) continue;
    const [, pid, rest] = m;
    const call = rest.match(/^(\w+)\(/)?.[1];
    if (!['connect', 'sendto', 'sendmsg', 'sendmmsg'].includes(call)) continue;
    if (/sa_family=AF_(UNIX|NETLINK|UNSPEC)/.test(rest) || /^\w+\(\d+<(UNIX|NETLINK)/.test(rest)) continue;
    const fd = rest.match(FD);
    const proto = fd ? fd[2] : '?';
    let to = null;
    const v4 = rest.match(INET);
    const v6 = rest.match(INET6);
    if (v4) to = `${v4[2]}:${v4[1]}`;
    else if (v6) to = `[${v6[2]}]:${v6[1]}`;
    else if (call !== 'connect' && fd && fd[3].includes('->')) {
      to = fd[3].split('->')[1];
    }
    if (!to) continue;
    calls.push({ pid: Number(pid), call, proto, to, line: raw.slice(0, 300) });
  }
  const host = (to) => to.replace(/:\d+$/, '');
  const traffic = [];
  const probes = [];
  for (const c of calls) {
    if (isLoopback(host(c.to))) continue;
    if (c.call === 'connect' && c.proto.startsWith('UDP') && ROUTE_PROBES.includes(c.to)) {
      probes.push(c);
    } else {
      traffic.push(c);
    }
  }
  return { calls, traffic, probes };
}
