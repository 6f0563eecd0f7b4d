/* iipsrv's configuration environment variables, honoured as a compatibility layer. */
#ifndef TESSERA_CONFIG_ENV_H
#define TESSERA_CONFIG_ENV_H

#include "config.h"
#include "util/status.h"

/* Looks a variable up; the default is getenv. Tests substitute their own. */
typedef const char *(*ts_env_lookup)(const char *name);

/* Applies FILESYSTEM_PREFIX, FILESYSTEM_SUFFIX, JPEG_QUALITY, MAX_CVT, MAX_IMAGE_CACHE_SIZE,
 * CORS, URI_MAP, BASE_URL, LOGFILE, VERBOSITY, IIIF_VERSION and MEMCACHED_SERVERS (the last is
 * reported as unsupported) on top of cfg. Call it after ts_config_defaults and before the
 * command line, so flags and the INI file still win. TS_EINVAL names a bad value. */
int ts_config_from_env(struct ts_config *cfg, struct ts_err *err);
int ts_config_from_env_with(struct ts_config *cfg, ts_env_lookup lookup, struct ts_err *err);

#endif
