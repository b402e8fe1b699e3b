/**
 * Where webhooks may go: http(s) only, and by default never to loopback, link-local (cloud
 * metadata at 169.254.169.254), private, CGNAT or unique-local addresses. The check runs on
 * the address actually connected to (after DNS), so a name that later resolves inward is caught.
 */
import dns from 'node:dns';
import net from 'node:net';

export class WebhookTargetError extends Error {
  override name = 'WebhookTargetError';
}

const BLOCKED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/3',
];
// IPv6 forms that embed an IPv4 address (IPv4-compatible, NAT64, 6to4) are blocked whole.
const BLOCKED_V6 = [
  '::/96',
  '::1/128',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '2002::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
];

function subnetList(cidrs: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const [addr, bits] = cidr.trim().split('/') as [string, string | undefined];
    const type = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
    list.addSubnet(addr, Number(bits ?? (type === 'ipv6' ? 128 : 32)), type);
  }
  return list;
}

export class WebhookTargetPolicy {
  private readonly blocked = subnetList([...BLOCKED_V4, ...BLOCKED_V6]);
  private readonly allowed: net.BlockList;

  /** @param allowPrivate comma-separated CIDRs that are allowed even though private. */
  constructor(allowPrivate = '') {
    const cidrs = allowPrivate
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const c of cidrs) {
      const addr = c.split('/')[0];
      if (!net.isIP(addr)) throw new WebhookTargetError(`WEBHOOK_ALLOW_PRIVATE: "${c}" is not a CIDR`);
    }
    this.allowed = subnetList(cidrs);
  }

  /**
   * An IP-literal host is checked here: Node never calls `lookup` for one, and it needs no DNS.
   * (Host names are checked by `lookup`, on the addresses actually connected to.)
   */
  checkLiteralHost(url: URL): void {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(host) && !this.isAllowedAddress(host))
      throw new WebhookTargetError(`webhook target ${host} is a private or local address`);
  }

  /** Check at submission: an http(s) URL without credentials, not naming a blocked address. */
  checkUrl(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new WebhookTargetError('webhook is not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new WebhookTargetError('webhook must be an http(s) URL');
    if (url.username || url.password) throw new WebhookTargetError('webhook URL must not carry credentials');
    this.checkLiteralHost(url);
    return url;
  }

  isAllowedAddress(address: string): boolean {
    let addr = address;
    let type: 'ipv4' | 'ipv6' = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
    if (mapped) {
      addr = mapped[1];
      type = 'ipv4';
    }
    if (this.allowed.check(addr, type)) return true;
    return !this.blocked.check(addr, type);
  }

  /**
   * A `lookup` for http.request: resolves, then refuses the target if any of its addresses is
   * blocked, before connecting. Node asks for every address (`all: true`) when it races IPv4
   * and IPv6 (autoSelectFamily), and for one otherwise; both forms are answered.
   */
  readonly lookup: net.LookupFunction = (hostname, options, callback) => {
    // Node's own lookup answers an error with the error alone.
    const fail = callback as (err: NodeJS.ErrnoException) => void;
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return fail(err);
      const blocked = addresses.find((a) => !this.isAllowedAddress(a.address));
      if (blocked || addresses.length === 0) {
        return fail(
          new WebhookTargetError(
            `webhook target ${hostname} resolves to ${blocked?.address ?? 'nothing'}, a private or local address`,
          ),
        );
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
