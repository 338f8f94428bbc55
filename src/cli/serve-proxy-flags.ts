// The reverse proxy's flags of `petrel serve` (--proxy and --proxy-*) → ServeOptions.proxy. The
// --proxy-* flags set every proxy: the command line's and each site's.

import { errorMessage } from '../core/errors.ts'
import { caCertificates, parseProxyRoute, protocolNames, type ProxyRoute } from '../apps/proxy/settings.ts'
import type { ServeOptions } from '../apps/serve/serve.ts'
import type { SiteSettings } from '../apps/serve/site-settings.ts'
import { oneOf, UsageError } from './args.ts'
import { readPem } from './tls-flags.ts'
import { refuseFlags, type ServeFlags } from './serve-flags.ts'

/** The proxy's settings, or undefined when neither --proxy nor a site's "proxy" asks for one (then a --proxy-* flag is an error). */
export function proxySettings(flags: ServeFlags, sites: readonly SiteSettings[] | null): ServeOptions['proxy'] {
  const proxyRoutes = flags.get('proxy') ?? []
  const siteRoutes = sites?.flatMap((s) => s.proxy) ?? []
  if (proxyRoutes.length > 0 || siteRoutes.length > 0) {
    const flagRoutes = proxyRoutes.map((text) => {
      try {
        return parseProxyRoute(text)
      } catch (err) {
        throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --proxy: ${errorMessage(err)}`)
      }
    })
    // The --proxy-* flags set every proxy: the command line's and each site's.
    const routes = [...flagRoutes, ...siteRoutes]
    const balance = oneOf('proxy-balance', flags.get('proxy-balance'), ['round-robin', 'least-conn'])
    const healthPath = flags.get('proxy-health-path')
    if (healthPath !== undefined && (!healthPath.startsWith('/') || /[\x00-\x20\x7f]/.test(healthPath)))
      throw new UsageError(
        'PETREL_ERR_CLI_BAD_VALUE',
        `bad value for --proxy-health-path: ${JSON.stringify(healthPath)}; a path starts with / and holds no spaces or control characters`,
      )
    // Without a path there are no active checks: an interval or timeout would do nothing, so it is
    // refused — except an interval of 0, which says just that.
    if (healthPath === undefined) {
      if ((flags.get('proxy-health-interval') ?? 0) > 0)
        throw new UsageError(
          'PETREL_ERR_CLI_BAD_VALUE',
          '--proxy-health-interval needs --proxy-health-path PATH: active health checks are off without the path to check',
        )
      refuseFlags(flags, ['proxy-health-timeout'], 'needs --proxy-health-path PATH: active health checks are off without the path to check')
    }
    const upgrades = flags.get('proxy-upgrade-protocols')
    const upgradeProtocols =
      upgrades === undefined
        ? undefined
        : upgrades
            .split(',')
            .map((p) => p.trim())
            .filter((p) => p !== '')
    if (upgradeProtocols !== undefined) {
      try {
        protocolNames(upgradeProtocols)
      } catch {
        throw new UsageError(
          'PETREL_ERR_CLI_BAD_VALUE',
          `bad value for --proxy-upgrade-protocols: ${JSON.stringify(upgrades)}; expected protocol names separated by commas, e.g. websocket,h2c ('' for none)`,
        )
      }
    }
    const upstreamCa = proxyCa(flags.get('proxy-ca'), routes)
    const upstreamTlsInsecure = flags.get('proxy-tls-insecure') === true
    if (upstreamTlsInsecure && !hasHttpsUpstream(routes))
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', '--proxy-tls-insecure applies to https:// upstreams, and no --proxy has one')
    return {
      routes: flagRoutes,
      options: {
        balance,
        connectTimeoutMs: flags.get('proxy-connect-timeout'),
        readTimeoutMs: flags.get('proxy-read-timeout'),
        keepAlive: flags.get('proxy-keepalive'),
        failTimeoutMs: flags.get('proxy-fail-timeout'),
        healthIntervalMs: flags.get('proxy-health-interval'),
        healthTimeoutMs: flags.get('proxy-health-timeout'),
        healthPath,
        maxResponseHeaderBytes: flags.get('proxy-max-response-header-bytes'),
        maxResponseHeaderCount: flags.get('proxy-max-response-header-count'),
        upgradeProtocols,
        underscoresInHeaders: flags.get('proxy-underscores-in-headers') === true,
        upstreamCa,
        upstreamTlsInsecure,
      },
    }
  } else {
    refuseFlags(
      flags,
      [
        'proxy-balance',
        'proxy-connect-timeout',
        'proxy-read-timeout',
        'proxy-keepalive',
        'proxy-fail-timeout',
        'proxy-health-interval',
        'proxy-health-path',
        'proxy-health-timeout',
        'proxy-max-response-header-bytes',
        'proxy-max-response-header-count',
        'proxy-upgrade-protocols',
        'proxy-underscores-in-headers',
        'proxy-ca',
        'proxy-tls-insecure',
      ],
      'applies to the reverse proxy: give --proxy PREFIX=URL (or a site\'s "proxy" in the config file) too',
    )
  }
  return undefined
}

function hasHttpsUpstream(routes: readonly ProxyRoute[]): boolean {
  return routes.some((route) => route.upstreams.some((u) => u.startsWith('https:')))
}

/**
 * --proxy-ca FILE's text (PEM certificates; the text, not the path, goes to the workers), read and
 * checked here so that an unreadable or wrong file stops the start with its name.
 */
function proxyCa(file: string | undefined, routes: readonly ProxyRoute[]): string | undefined {
  if (file === undefined) return undefined
  if (!hasHttpsUpstream(routes)) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', '--proxy-ca applies to https:// upstreams, and no --proxy has one')
  const text = readPem('--proxy-ca', file)
  try {
    caCertificates(text, `--proxy-ca ${file}`)
  } catch (err) {
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', errorMessage(err))
  }
  return text
}
