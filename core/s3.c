/* s3.c — what an s3://BUCKET/KEY URL means: the HTTP address to ask,
 * and the credentials and region to sign each request with (AWS
 * Signature Version 4, which libcurl computes: CURLOPT_AWS_SIGV4).
 *
 *   endpoint     AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL: the object
 *                is ENDPOINT/BUCKET/KEY (path style, what S3-compatible
 *                stores answer); without either, Amazon S3 itself at
 *                https://BUCKET.s3.REGION.amazonaws.com/KEY
 *   region       AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1
 *   credentials  AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
 *                AWS_SESSION_TOKEN), else the profile AWS_PROFILE
 *                (default "default") of AWS_SHARED_CREDENTIALS_FILE, else
 *                of ~/.aws/credentials
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "source.h"

int sst_src_is_s3(const char *name) {
  return strncasecmp(name, "s3://", 5) == 0;
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Appends s to out (of cap bytes, at *len), %-encoding every byte but
 * the unreserved ones and, when keep_slash, '/'. 0, or -1 when full. */
static int put_encoded(char *out, size_t cap, size_t *len, const char *s,
                       int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    int plain = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
                (keep_slash && c == '/');
    if (*len + (plain ? 1 : 3) >= cap)
      return -1;
    if (plain) {
      out[(*len)++] = (char)c;
    } else {
      out[(*len)++] = '%';
      out[(*len)++] = hex[c >> 4];
      out[(*len)++] = hex[c & 15];
    }
  }
  out[*len] = '\0';
  return 0;
}

/* Trims spaces at both ends of s, in place. */
static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

/* Reads aws_access_key_id, aws_secret_access_key and aws_session_token
 * of [profile] from the credentials file. 0 when a key pair was found. */
static int from_file(sst_s3 *s3, const char *path, const char *profile) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char line[1024];
  int in = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    char *l = trim(line);
    if (l[0] == '#' || l[0] == ';' || l[0] == '\0')
      continue;
    if (l[0] == '[') {
      char *end = strchr(l, ']');
      if (end != NULL)
        *end = '\0';
      in = strcmp(trim(l + 1), profile) == 0;
      continue;
    }
    char *eq = strchr(l, '=');
    if (!in || eq == NULL)
      continue;
    *eq = '\0';
    char *k = trim(l), *v = trim(eq + 1);
    if (strcmp(k, "aws_access_key_id") == 0)
      snprintf(s3->key_id, sizeof s3->key_id, "%s", v);
    else if (strcmp(k, "aws_secret_access_key") == 0)
      snprintf(s3->secret, sizeof s3->secret, "%s", v);
    else if (strcmp(k, "aws_session_token") == 0)
      snprintf(s3->token, sizeof s3->token, "%s", v);
  }
  fclose(f);
  return s3->key_id[0] && s3->secret[0] ? 0 : -1;
}

int sst_s3_resolve(const char *url, sst_s3 *s3, sst_error *err) {
  memset(s3, 0, sizeof *s3);
  const char *bucket = url + 5, *slash = strchr(bucket, '/');
  if (slash == NULL || slash == bucket || slash[1] == '\0' ||
      (size_t)(slash - bucket) >= 64)
    return sst_error_set(err, SST_EINVAL,
                         "%s: not s3://BUCKET/KEY (a bucket and a key)", url);
  char name[64];
  memcpy(name, bucket, (size_t)(slash - bucket));
  name[slash - bucket] = '\0';
  for (const char *c = name; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
      return sst_error_set(err, SST_EINVAL, "%s: '%s' is not a bucket name",
                           url, name);
  const char *region = env("AWS_REGION");
  if (region == NULL)
    region = env("AWS_DEFAULT_REGION");
  snprintf(s3->region, sizeof s3->region, "%s", region ? region : "us-east-1");
  for (const char *c = s3->region; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '-')
      return sst_error_set(err, SST_EINVAL, "%s: region '%s' is not valid", url,
                           s3->region);
  const char *endpoint = env("AWS_ENDPOINT_URL_S3");
  if (endpoint == NULL)
    endpoint = env("AWS_ENDPOINT_URL");
  size_t len = 0;
  int full;
  if (endpoint != NULL) {
    if (!sst_src_is_url(endpoint))
      return sst_error_set(err, SST_EINVAL,
                           "%s: endpoint '%s' is not an http:// or https:// "
                           "URL",
                           url, endpoint);
    len = (size_t)snprintf(s3->http_url, sizeof s3->http_url, "%s", endpoint);
    while (len > 0 && s3->http_url[len - 1] == '/')
      s3->http_url[--len] = '\0';
    full = len + 1 >= sizeof s3->http_url ||
           put_encoded(s3->http_url, sizeof s3->http_url, &len, "/", 1) ||
           put_encoded(s3->http_url, sizeof s3->http_url, &len, name, 0);
  } else {
    len = (size_t)snprintf(s3->http_url, sizeof s3->http_url,
                           "https://%s.s3.%s.amazonaws.com", name, s3->region);
    full = len >= sizeof s3->http_url;
  }
  full = full || put_encoded(s3->http_url, sizeof s3->http_url, &len, "/", 1) ||
         put_encoded(s3->http_url, sizeof s3->http_url, &len, slash + 1, 1);
  if (full)
    return sst_error_set(err, SST_EINVAL, "%s: URL too long", url);

  const char *id = env("AWS_ACCESS_KEY_ID"),
             *secret = env("AWS_SECRET_ACCESS_KEY");
  if (id != NULL && secret != NULL) {
    snprintf(s3->key_id, sizeof s3->key_id, "%s", id);
    snprintf(s3->secret, sizeof s3->secret, "%s", secret);
    const char *token = env("AWS_SESSION_TOKEN");
    if (token != NULL)
      snprintf(s3->token, sizeof s3->token, "%s", token);
    return 0;
  }
  const char *profile = env("AWS_PROFILE");
  const char *file = env("AWS_SHARED_CREDENTIALS_FILE");
  char path[4096];
  if (file == NULL && env("HOME") != NULL) {
    snprintf(path, sizeof path, "%s/.aws/credentials", env("HOME"));
    file = path;
  }
  if (file != NULL && from_file(s3, file, profile ? profile : "default") == 0)
    return 0;
  return sst_error_set(err, EACCES,
                       "%s: no credentials: set AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY, or write them in %s",
                       url, file ? file : "~/.aws/credentials");
}
