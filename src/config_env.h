/* iipsrv's configuration environment variables, honoured as a compatibility layer. */
#ifndef TESSERA_CONFIG_ENV_H
#define TESSERA_CONFIG_ENV_H

#include "config.h"
#include "util/status.h"

/* Looks a variable up; the default is getenv. Tests substitute their own. */
typedef const char *(*ts_env_lookup)(const char *name);

/* Applies every variable of iipsrv 1.3's Environment.h on top of cfg: each is honoured, or,
 * where Tessera cannot do what its value asks, refused with a one-line reason naming it
 * (TS_EUNSUPPORTED); MEMCACHED_SERVERS and MEMCACHED_TIMEOUT only warn. Call it after
 * ts_config_defaults and before the command line, so flags and the INI file still win.
 * TS_EINVAL names a malformed value. */
int ts_config_from_env(struct ts_config *cfg, struct ts_err *err);
int ts_config_from_env_with(struct ts_config *cfg, ts_env_lookup lookup, struct ts_err *err);

#endif
