/* curl_load.h — libcurl, loaded when the first URL is opened.
 *
 * The library does not link libcurl: with its TLS, Kerberos, LDAP and
 * SSH libraries it added about 1.1 MiB of anonymous memory (relocated
 * data) and thirty libraries to every process, the daemon of a local
 * table and each `sst get` included, which never fetch a byte over a
 * network. http.c includes this header instead of <curl/curl.h>; each
 * curl_* function it names goes through a table filled by dlopen of
 * libcurl.so.4 (Debian's libcurl4) on the first URL. Not installed.
 */
#ifndef SST_CURL_LOAD_H
#define SST_CURL_LOAD_H

/* curl.h's type-checking macros would wrap the names defined below. */
#ifndef CURL_DISABLE_TYPECHECK
#define CURL_DISABLE_TYPECHECK
#endif
#include <curl/curl.h>

struct sst_curl_api {
  CURLcode (*global_init)(long flags);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *h, CURLoption o, ...);
  CURLcode (*easy_perform)(CURL *h);
  CURLcode (*easy_getinfo)(CURL *h, CURLINFO i, ...);
  void (*easy_cleanup)(CURL *h);
  const char *(*easy_strerror)(CURLcode c);
  struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
  void (*slist_free_all)(struct curl_slist *l);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_setopt)(CURLM *m, CURLMoption o, ...);
  CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
  CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
  CURLMcode (*multi_perform)(CURLM *m, int *running);
  CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd fds[], unsigned n,
                          int timeout_ms, int *ready);
  CURLMsg *(*multi_info_read)(CURLM *m, int *left);
  CURLMcode (*multi_wakeup)(CURLM *m);
  CURLMcode (*multi_cleanup)(CURLM *m);
  const char *(*multi_strerror)(CURLMcode c);
};

/* Filled by sst_curl_load; NULL pointers before. */
extern struct sst_curl_api sst_curl;

/* Loads libcurl once (thread-safe). 0, or ENOENT with *why saying what
 * is missing. */
int sst_curl_load(const char **why);

#ifndef SST_CURL_LOAD_C
/* curl.h defines these four as macros that check the argument count. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#undef curl_share_setopt
#define curl_global_init sst_curl.global_init
#define curl_easy_init sst_curl.easy_init
#define curl_easy_setopt sst_curl.easy_setopt
#define curl_easy_perform sst_curl.easy_perform
#define curl_easy_getinfo sst_curl.easy_getinfo
#define curl_easy_cleanup sst_curl.easy_cleanup
#define curl_easy_strerror sst_curl.easy_strerror
#define curl_slist_append sst_curl.slist_append
#define curl_slist_free_all sst_curl.slist_free_all
#define curl_multi_init sst_curl.multi_init
#define curl_multi_setopt sst_curl.multi_setopt
#define curl_multi_add_handle sst_curl.multi_add_handle
#define curl_multi_remove_handle sst_curl.multi_remove_handle
#define curl_multi_perform sst_curl.multi_perform
#define curl_multi_poll sst_curl.multi_poll
#define curl_multi_info_read sst_curl.multi_info_read
#define curl_multi_wakeup sst_curl.multi_wakeup
#define curl_multi_cleanup sst_curl.multi_cleanup
#define curl_multi_strerror sst_curl.multi_strerror
#endif

#endif
