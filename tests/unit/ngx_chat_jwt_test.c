
/*
 * ngx_chat_jwt_test.c: unit tests for ngx_chat_jwt.c (HS256 verify and
 * sign, strict base64url, id syntax).  Known answers come from outside our
 * code: the RFC 7515 appendix A.1 HS256 example, RFC 4648 base64 vectors,
 * and tokens minted by the python3 script in the comment above the vector
 * table (stdlib hmac/hashlib/base64 only).  Prints one line per failure
 * and finally "N passed, M failed"; exits 1 if anything failed.
 */


#include <stdio.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_chat_jwt.h"


#define NOW  1700000000

#define CHECK(cond)                                                           \
    check((cond), __LINE__, #cond)

#define CHECK_RC(got, want)                                                   \
    check_rc((got), (want), __LINE__, #got)


typedef struct {
    const char  *name;
    int64_t      leeway;
    int          rc;
    const char  *token;
} vector_t;


static const uint8_t  key[] =
    "ngx_chat unit-test secret: 32+ bytes, not for prod";

#define KEY_LEN  (sizeof(key) - 1)

static unsigned  passed, failed;


/*
 * The vectors below were printed by this python3 script (stdlib only;
 * c() prints one entry: name, leeway, expected code, token).  Paste its
 * output between the braces to regenerate.
 *
 * import base64, hashlib, hmac
 *
 * KEY = b"ngx_chat unit-test secret: 32+ bytes, not for prod"
 * NOW = 1700000000
 * H = '{"alg":"HS256","typ":"JWT"}'
 *
 *
 * def b64(b):
 *     return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
 *
 *
 * def tok(h, p, key=KEY, md=hashlib.sha256):
 *     si = b64(h.encode()) + "." + b64(p.encode("latin-1"))
 *     return si + "." + b64(hmac.new(key, si.encode(), md).digest())
 *
 *
 * def c(s, name, rc, leeway=0):
 *     s = [s[i:i + 64] for i in range(0, len(s), 64)]
 *     print('    { "%s", %d, NGX_CHAT_JWT_%s,' % (name, leeway, rc))
 *     print("\n".join('      "%s"' % x for x in s) + " },")
 *
 *
 * def p(extra, sub='"alice"', dev='"phone-1"', exp=str(NOW + 3600)):
 *     return ('{"sub":%s,"dev":%s,"iat":%d,"exp":%s%s}'
 *             % (sub, dev, NOW - 1000, exp, extra))
 *
 *
 * OK = p("")
 * c(tok(H, OK), "valid", "OK")
 * c(tok('{"alg":"HS256"}', OK), "header without typ", "OK")
 * c(tok('{"typ":"JWT","kid":"k1","alg":"HS256"}', OK), "kid, other order",
 *   "OK")
 * c(tok(H, '{"sub":"u@example.com","dev":"d.1_x-Y","exp":%d,"nbf":%d,'
 *       '"aud":["a","b"],"ctx":{"x":{"sub":1}},"n":1.5e3,"t":true,"z":null,'
 *       '"x":1,"x":2}' % (NOW + 60, NOW - 60)), "extra claims ignored", "OK")
 * c(tok(H, p("", sub='"' + "a" * 64 + '"', dev='"' + "D" * 64 + '"')),
 *   "64-char ids", "OK")
 * c(tok(H, p("", exp="9223372036854775807")), "exp INT64_MAX", "OK")
 * c(tok(H, p("", sub='"al\\u0069ce"')), "escaped sub", "OK")
 *
 * c(b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(OK.encode()) + ".",
 *   "alg none, no signature", "EFORMAT")
 * c(tok('{"alg":"none","typ":"JWT"}', OK), "alg none, signed", "EALG")
 * c(tok('{"alg":"HS512","typ":"JWT"}', OK, md=hashlib.sha512), "HS512",
 *   "EALG")
 * c(tok('{"typ":"JWT"}', OK), "alg missing", "EALG")
 * c(tok('{"alg":"hs256"}', OK), "alg lower case", "EALG")
 * c(tok('{"alg":["HS256"]}', OK), "alg array", "EALG")
 * c(tok('{"alg":"HS256","typ":"jwt"}', OK), "typ lower case", "EALG")
 * c(tok('{"alg":"HS256","typ":1}', OK), "typ number", "EALG")
 * c(tok('{"alg":"HS256","crit":["exp"]}', OK), "crit", "EALG")
 * c(tok('{"alg":"HS256","alg":"none"}', OK), "duplicate alg", "EALG")
 * c(tok('["HS256"]', OK), "header array", "EFORMAT")
 * c(tok('{"alg":"HS256"', OK), "header truncated", "EFORMAT")
 * c(tok('{"alg":"HS256"} ', OK), "header trailing space", "OK")
 * c(tok('{"alg":"HS256"}{}', OK), "header trailing object", "EFORMAT")
 * c(tok(H, OK, key=KEY + b"x"), "other secret", "ESIG")
 *
 * c(tok(H, p("", exp=str(NOW - 10))), "expired", "EEXPIRED")
 * c(tok(H, p("", exp=str(NOW - 10))), "expired, leeway 10", "EEXPIRED", 10)
 * c(tok(H, p("", exp=str(NOW - 10))), "expired, leeway 11", "OK", 11)
 * c(tok(H, p("", exp=str(NOW))), "exp == now", "EEXPIRED")
 * c(tok(H, p("", exp=str(NOW + 1))), "exp == now + 1", "OK")
 * c(tok(H, p(',"nbf":%d' % (NOW + 60))), "nbf future", "ENOTYET")
 * c(tok(H, p(',"nbf":%d' % (NOW + 60))), "nbf, leeway 59", "ENOTYET", 59)
 * c(tok(H, p(',"nbf":%d' % (NOW + 60))), "nbf, leeway 60", "OK", 60)
 * c(tok(H, p(',"nbf":%d' % NOW)), "nbf == now", "OK")
 *
 * c(tok(H, '{"dev":"phone-1","exp":%d}' % (NOW + 60)), "no sub", "ECLAIMS")
 * c(tok(H, '{"sub":"alice","exp":%d}' % (NOW + 60)), "no dev", "ECLAIMS")
 * c(tok(H, '{"sub":"alice","dev":"phone-1"}'), "no exp", "ECLAIMS")
 * c(tok(H, p("", exp="1700003600.0")), "exp float", "ECLAIMS")
 * c(tok(H, p("", exp="1.7e9")), "exp exponent", "ECLAIMS")
 * c(tok(H, p("", exp='"1700003600"')), "exp string", "ECLAIMS")
 * c(tok(H, p("", exp="9223372036854775808")), "exp overflow", "ECLAIMS")
 * c(tok(H, p("", exp="99999999999999999999999")), "exp huge", "ECLAIMS")
 * c(tok(H, p("", exp="-1")), "exp negative", "ECLAIMS")
 * c(tok(H, p("", exp="0")), "exp zero", "ECLAIMS")
 * c(tok(H, p("", exp="null")), "exp null", "ECLAIMS")
 * c(tok(H, p("", exp="[1]")), "exp array", "ECLAIMS")
 * c(tok(H, p(',"nbf":1.5')), "nbf float", "ECLAIMS")
 * c(tok(H, p(',"iat":"x"')), "iat string", "ECLAIMS")
 * c(tok(H, p("", sub='"' + "a" * 65 + '"')), "sub 65 chars", "ECLAIMS")
 * c(tok(H, p("", dev='"' + "d" * 65 + '"')), "dev 65 chars", "ECLAIMS")
 * c(tok(H, p("", sub='""')), "sub empty", "ECLAIMS")
 * c(tok(H, p("", dev='""')), "dev empty", "ECLAIMS")
 * c(tok(H, p("", sub='"a b"')), "sub space", "ECLAIMS")
 * c(tok(H, p("", sub='"a/b"')), "sub slash", "ECLAIMS")
 * c(tok(H, p("", sub='"a\\u0000b"')), "sub NUL", "ECLAIMS")
 * c(tok(H, p("", dev='"caf\\u00e9"')), "dev non-ASCII", "ECLAIMS")
 * c(tok(H, p("", sub="123")), "sub number", "ECLAIMS")
 * c(tok(H, p("", sub='{"id":"alice"}')), "sub object", "ECLAIMS")
 * c(tok(H, p(',"sub":"mallory"')), "duplicate sub", "ECLAIMS")
 * c(tok(H, '{"s\\u0075b":"mallory",' + OK[1:]), "duplicate escaped sub",
 *   "ECLAIMS")
 * c(tok(H, p(',"exp":%d' % (NOW + 7200))), "duplicate exp", "ECLAIMS")
 * c(tok(H, p(',"nbf":1,"nbf":2')), "duplicate nbf", "ECLAIMS")
 *
 * c(tok(H, '["alice"]'), "claims array", "EFORMAT")
 * c(tok(H, '"alice"'), "claims string", "EFORMAT")
 * c(tok(H, '17'), "claims number", "EFORMAT")
 * c(tok(H, ''), "claims empty", "EFORMAT")
 * c(tok(H, OK + "x"), "claims trailing garbage", "EFORMAT")
 * c(tok(H, OK[:-1] + ',"c":"\xff"}'), "claims bad UTF-8", "EFORMAT")
 * c(tok(H, '//c\n' + OK), "claims comment", "EFORMAT")
 * c(tok(H, p(',"d":[[[[[[[1]]]]]]]')), "nesting 8", "OK")
 * c(tok(H, p(',"d":[[[[[[[[1]]]]]]]]')), "nesting 9", "EFORMAT")
 */

static const vector_t  vectors[] = {
    { "valid", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.XM4"
      "OgLJS9DiKqS09Soa_TGmCR7RfoM3wDQAbe0GQ8m8" },
    { "header without typ", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImRldiI6InBob25lLTEiLCJ"
      "pYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.LNT6Vophn04SfyX1SjB"
      "4cu9g8PFi3ZUjdYXGQRBf3U0" },
    { "kid, other order", 0, NGX_CHAT_JWT_OK,
      "eyJ0eXAiOiJKV1QiLCJraWQiOiJrMSIsImFsZyI6IkhTMjU2In0.eyJzdWIiOiJh"
      "bGljZSIsImRldiI6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcw"
      "MDAwMzYwMH0.ftd9KcOvPQL6hwZZ-UJpJjhfQolPYQYZEsBDhg4BmW0" },
    { "extra claims ignored", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1QGV4YW1wbGUuY29"
      "tIiwiZGV2IjoiZC4xX3gtWSIsImV4cCI6MTcwMDAwMDA2MCwibmJmIjoxNjk5OTk"
      "5OTQwLCJhdWQiOlsiYSIsImIiXSwiY3R4Ijp7IngiOnsic3ViIjoxfX0sIm4iOjE"
      "uNWUzLCJ0Ijp0cnVlLCJ6IjpudWxsLCJ4IjoxLCJ4IjoyfQ.xjoerDkOnJEWj-zM"
      "hFGtZvfMqClBObOsUWA65-8pnIE" },
    { "64-char ids", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhYWFhYWFhYWFhYWF"
      "hYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWF"
      "hYWFhIiwiZGV2IjoiRERERERERERERERERERERERERERERERERERERERERERERER"
      "ERERERERERERERERERERERERERERERERERERERCIsImlhdCI6MTY5OTk5OTAwMCw"
      "iZXhwIjoxNzAwMDAzNjAwfQ.Y5NZwr8wwCeyAQVOOIjktbXJ0yrQvRP2tdrVbVpB"
      "V6w" },
    { "exp INT64_MAX", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6OTIyMzM3MjAzNjg1NDc"
      "3NTgwN30.-sVzoD3lKa4bNM0O3goNS_0FdWgBVBnP3HpRaxAcGqY" },
    { "escaped sub", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbFx1MDA2OWNlIiw"
      "iZGV2IjoicGhvbmUtMSIsImlhdCI6MTY5OTk5OTAwMCwiZXhwIjoxNzAwMDAzNjA"
      "wfQ.vXF9B0xTEZ0IxI--xht6d2siUa7_Q7s7ie8fdy0yIb0" },
    { "alg none, no signature", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImRldiI6"
      "InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0." },
    { "alg none, signed", 0, NGX_CHAT_JWT_EALG,
      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImRldiI6"
      "InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.98En"
      "9KgL6TC9HJoyXCWvqqBCmFTaT3JctokXBiSHCVo" },
    { "HS512", 0, NGX_CHAT_JWT_EALG,
      "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.WSL"
      "hAICYg_9bvYasFaRRnfa-fLTZEuC-_e-sVUFgMSV_Be8MDfF_Z910vhlKd-7d3DS"
      "oGS-K03dN1jqyqf9edA" },
    { "alg missing", 0, NGX_CHAT_JWT_EALG,
      "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJhbGljZSIsImRldiI6InBob25lLTEiLCJpY"
      "XQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.Ae3yxTV6lD6f0N0dK4c-9"
      "Hr5G91j9ow0c7vw9QJln7c" },
    { "alg lower case", 0, NGX_CHAT_JWT_EALG,
      "eyJhbGciOiJoczI1NiJ9.eyJzdWIiOiJhbGljZSIsImRldiI6InBob25lLTEiLCJ"
      "pYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.cjfG27xjrMMpW3CdwdV"
      "lOgxlPDMSeaBSMGyogXl0oZA" },
    { "alg array", 0, NGX_CHAT_JWT_EALG,
      "eyJhbGciOlsiSFMyNTYiXX0.eyJzdWIiOiJhbGljZSIsImRldiI6InBob25lLTEi"
      "LCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.bNBkuVMFU6BB3yYY"
      "Y51kiohLWaKoXmwXQlAgQi5_eUc" },
    { "typ lower case", 0, NGX_CHAT_JWT_EALG,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6Imp3dCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.hpH"
      "ALmXvpZUY_dgI39IYdQ-h5yfcGdRHVm-j5AyzaZs" },
    { "typ number", 0, NGX_CHAT_JWT_EALG,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6MX0.eyJzdWIiOiJhbGljZSIsImRldiI6InBo"
      "b25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.ZulT92Sg"
      "o2o6iDKxNH7O4Gb5p3z5DdwdbzVIf5o5j6I" },
    { "crit", 0, NGX_CHAT_JWT_EALG,
      "eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiZXhwIl19.eyJzdWIiOiJhbGljZSIsImR"
      "ldiI6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0"
      ".hkpaD_-fAvTQmSw-2OGnt2_h-rr0Vr1QVGuz5j8MeW0" },
    { "duplicate alg", 0, NGX_CHAT_JWT_EALG,
      "eyJhbGciOiJIUzI1NiIsImFsZyI6Im5vbmUifQ.eyJzdWIiOiJhbGljZSIsImRld"
      "iI6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.B"
      "FNMznkzvB8GMgkBqy8uB2p4FPIQPlysr2e58glUIfo" },
    { "header array", 0, NGX_CHAT_JWT_EFORMAT,
      "WyJIUzI1NiJd.eyJzdWIiOiJhbGljZSIsImRldiI6InBob25lLTEiLCJpYXQiOjE"
      "2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.O47Y3fZu7gVbWgctBiTfghjgFgu"
      "MxxepZvx1akD2664" },
    { "header truncated", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiI.eyJzdWIiOiJhbGljZSIsImRldiI6InBob25lLTEiLCJp"
      "YXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.UoYH46yNHXwV4MQiXnNo"
      "qCQCtA64CbQQ2FJGQd3Te9Y" },
    { "header trailing space", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiJ9IA.eyJzdWIiOiJhbGljZSIsImRldiI6InBob25lLTEiL"
      "CJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.EWySxdm92H5siUkBk"
      "SrG-at1yZffrKwigp6t7tI7c3o" },
    { "header trailing object", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiJ9e30.eyJzdWIiOiJhbGljZSIsImRldiI6InBob25lLTEi"
      "LCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.e2ZHKqNzbMkrI2rz"
      "4vOBSBI3ADgqlNIdsoFJr-gzAoA" },
    { "other secret", 0, NGX_CHAT_JWT_ESIG,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.dUu"
      "g2BK5T2fGfQpj7pzp7cQzVjCJrYgZYXKNlyUoqQ0" },
    { "expired", 0, NGX_CHAT_JWT_EEXPIRED,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTY5OTk5OTk5MH0.Rc9"
      "bSzbqPhmQfEJo_DdKdvkfnLvAcpYjgCraCME3TF4" },
    { "expired, leeway 10", 10, NGX_CHAT_JWT_EEXPIRED,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTY5OTk5OTk5MH0.Rc9"
      "bSzbqPhmQfEJo_DdKdvkfnLvAcpYjgCraCME3TF4" },
    { "expired, leeway 11", 11, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTY5OTk5OTk5MH0.Rc9"
      "bSzbqPhmQfEJo_DdKdvkfnLvAcpYjgCraCME3TF4" },
    { "exp == now", 0, NGX_CHAT_JWT_EEXPIRED,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMDAwMH0.bhU"
      "JIXeP_yOaXy1DqJtZ9ZkX4e4mrgN00hzr5kO5mDQ" },
    { "exp == now + 1", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMDAwMX0.uX9"
      "fp8b1Qm_NGH7hljBuvOvCGCFMedgKMFtcSiFeWT0" },
    { "nbf future", 0, NGX_CHAT_JWT_ENOTYET,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwibmJ"
      "mIjoxNzAwMDAwMDYwfQ.j4KbR3FCgTYbVkeEpekEMduLAwhlybMhdjiRGJVXoFc" },
    { "nbf, leeway 59", 59, NGX_CHAT_JWT_ENOTYET,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwibmJ"
      "mIjoxNzAwMDAwMDYwfQ.j4KbR3FCgTYbVkeEpekEMduLAwhlybMhdjiRGJVXoFc" },
    { "nbf, leeway 60", 60, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwibmJ"
      "mIjoxNzAwMDAwMDYwfQ.j4KbR3FCgTYbVkeEpekEMduLAwhlybMhdjiRGJVXoFc" },
    { "nbf == now", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwibmJ"
      "mIjoxNzAwMDAwMDAwfQ.u2xbnz33tSSNff68haEqFO-au58s09ZUXN3qLDCoz3w" },
    { "no sub", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkZXYiOiJwaG9uZS0xIiwiZXh"
      "wIjoxNzAwMDAwMDYwfQ.mPEvbTjkjGJPphO1QWlHprHKawWI8nn_ZW_xzyObMGA" },
    { "no dev", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI"
      "6MTcwMDAwMDA2MH0.dvtlFbzhvNE53Wf6ooXEugVAij7Tv-1BDjK2T-LfME4" },
    { "no exp", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEifQ.eAo3LAdxTYE4dtPEO4oEVtdT3xw_vZg3pIWQDjMtV98" },
    { "exp float", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMC4wfQ."
      "ve3nGueZWvHjEo9sTbACP3hMQG0Lueg-P_zrvH-QYLQ" },
    { "exp exponent", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MS43ZTl9.Wh5gLyQK1H"
      "nhbQtyWguPOHR3L38hwlf4ZMS6HwwRqQI" },
    { "exp string", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6IjE3MDAwMDM2MDAifQ."
      "EYRyG5mL9O9FxFPtHaUMn9MH48OsYhpED2PsYnKQ0ko" },
    { "exp overflow", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6OTIyMzM3MjAzNjg1NDc"
      "3NTgwOH0.6Q8yqFL0256htpDRwSLuL0VXngGvMZJN9Md_HOCgOHI" },
    { "exp huge", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6OTk5OTk5OTk5OTk5OTk"
      "5OTk5OTk5OTl9.LVDM7Dikbzj6JMKLqzcpjHlV71HbO36fqFaQsLxOpr8" },
    { "exp negative", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6LTF9.Rdmh2AOXk4X2XI"
      "QmfJnl7OLT8MEz7q9VJN9Vzx48He0" },
    { "exp zero", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MH0.wFRy64ATI-TdaxK"
      "vs8Q0U5R9GhpO1_9pt0fDWWSNTg0" },
    { "exp null", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6bnVsbH0.6AaBK2GjsSR"
      "20UoV_mhkIZnkoTyJ43p-lSDoxf77XD4" },
    { "exp array", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6WzFdfQ.kmcKCZXplBiK"
      "Y90S4INWvzIpKIJoc4f4ALkUVq5_BV0" },
    { "nbf float", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwibmJ"
      "mIjoxLjV9.gFPmpvqtI8AgKTSzAXDB-sA_vOlrHTJ4cKJQGgStZws" },
    { "iat string", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwiaWF"
      "0IjoieCJ9.Rm1fAkrnCcQCIK9LbdXMctGth4sVP3xeF51ELin6jMU" },
    { "sub 65 chars", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhYWFhYWFhYWFhYWF"
      "hYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWF"
      "hYWFhYSIsImRldiI6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTc"
      "wMDAwMzYwMH0.wg_QKlm3ohKmoFF9F7IGepYbiFqzYDiIwzhkhOhY1ug" },
    { "dev 65 chars", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6ImRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGR"
      "kZGRkZGRkZGRkZGRkZGRkZGRkIiwiaWF0IjoxNjk5OTk5MDAwLCJleHAiOjE3MDA"
      "wMDM2MDB9.qOK-dC1_GGsa0LyEjddSxekxRFwZ_Q7apFy3_3pYpCo" },
    { "sub empty", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIiLCJkZXYiOiJwaG9"
      "uZS0xIiwiaWF0IjoxNjk5OTk5MDAwLCJleHAiOjE3MDAwMDM2MDB9.Ol5Oa7XPIZ"
      "BkUeU7TGPejj-_7qSZcoapts-Up8B4mrE" },
    { "dev empty", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6IiIsImlhdCI6MTY5OTk5OTAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.LLNtg_S2QIUT"
      "73FUOnKi3c89oS7A4Yv0ia5gkgNStUE" },
    { "sub space", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhIGIiLCJkZXYiOiJ"
      "waG9uZS0xIiwiaWF0IjoxNjk5OTk5MDAwLCJleHAiOjE3MDAwMDM2MDB9.FOY_KW"
      "S5V-6SGJoJF7q7u3eQfImdFNgi6_7iDcZ4jGw" },
    { "sub slash", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhL2IiLCJkZXYiOiJ"
      "waG9uZS0xIiwiaWF0IjoxNjk5OTk5MDAwLCJleHAiOjE3MDAwMDM2MDB9.G-HMiJ"
      "W5W2BZsiR3QGzXlIb00Qsi_XeuVEw-i0MTZR8" },
    { "sub NUL", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhXHUwMDAwYiIsImR"
      "ldiI6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0"
      ".E1BnjYbOLOalahsnfFd_pIQB2ctT93bnRbCBeA2ECO4" },
    { "dev non-ASCII", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6ImNhZlx1MDBlOSIsImlhdCI6MTY5OTk5OTAwMCwiZXhwIjoxNzAwMDAzNjAwfQ."
      "eNqpPJdEUbIpr9ln_c_5kpSpNotdfHaEMZI0L00vhhg" },
    { "sub number", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOjEyMywiZGV2IjoicGh"
      "vbmUtMSIsImlhdCI6MTY5OTk5OTAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.nUzcit1N"
      "rpl71zcsm1IZW80QTJ9Ri68aQBnCCIsKrTs" },
    { "sub object", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOnsiaWQiOiJhbGljZSJ"
      "9LCJkZXYiOiJwaG9uZS0xIiwiaWF0IjoxNjk5OTk5MDAwLCJleHAiOjE3MDAwMDM"
      "2MDB9.gMzBK3wVFOWz2EGOG6A5nGjSDKBsVQko0fluGCkGNaM" },
    { "duplicate sub", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwic3V"
      "iIjoibWFsbG9yeSJ9.umHIYevb7Tkur67phWsfqAxEt--M-vSYLcfYrxZce18" },
    { "duplicate escaped sub", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzXHUwMDc1YiI6Im1hbGxvcnk"
      "iLCJzdWIiOiJhbGljZSIsImRldiI6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDA"
      "sImV4cCI6MTcwMDAwMzYwMH0.JQJFoOmIA8F9sqi-2CpKCngUGSJm10S6C08_mnk"
      "NeKg" },
    { "duplicate exp", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwiZXh"
      "wIjoxNzAwMDA3MjAwfQ.l1G6twkpPL8-kIDgWyHwxxlbPMO4ILyojr3Y1h7NNN8" },
    { "duplicate nbf", 0, NGX_CHAT_JWT_ECLAIMS,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwibmJ"
      "mIjoxLCJuYmYiOjJ9.U37P6WAeCkvrfW0kM1moiCOxc95QDz6w56h6zFw43Q8" },
    { "claims array", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.WyJhbGljZSJd.BEWDLz45iqLsCo"
      "Wncrhok5k2IldRPocpfzU7suuFzEw" },
    { "claims string", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.ImFsaWNlIg.tWQLrIr_vig_fl-N"
      "TtsL-dq5GEZFCI28WKGgWdiWbgk" },
    { "claims number", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.MTc.LXkeqgqkIX8qY0sn5Qo7KaR"
      "AP0RxK3tpMkO3-Rf_w_E" },
    { "claims empty", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..MvjR9H_H9YarI4SxUkTovcuPy1"
      "EUvYgWCqRwVI7qi2A" },
    { "claims trailing garbage", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH14.71"
      "2b9tFR1OP4IUqZSx1OkZot2K-xsCgIluAKu4Gj8Wo" },
    { "claims bad UTF-8", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwiYyI"
      "6Iv8ifQ.7GZMcCZ85DngVRVWoPktCzeqbDyCSRG9p0_85rQKcSA" },
    { "claims comment", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.Ly9jCnsic3ViIjoiYWxpY2UiLCJ"
      "kZXYiOiJwaG9uZS0xIiwiaWF0IjoxNjk5OTk5MDAwLCJleHAiOjE3MDAwMDM2MDB"
      "9.egUzGxqJOxmLkiD84gX5MarWFcYgzDfFHBwg1s9q784" },
    { "nesting 8", 0, NGX_CHAT_JWT_OK,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwiZCI"
      "6W1tbW1tbWzFdXV1dXV1dfQ.vsVNxM26kDIBBgLu4APd6gaENpVUK8srYtzLk3JW"
      "mGU" },
    { "nesting 9", 0, NGX_CHAT_JWT_EFORMAT,
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI"
      "6InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMCwiZCI"
      "6W1tbW1tbW1sxXV1dXV1dXV19.fhlOpAUGKUrdnJELYpHbws9_9IPsU94kUgtu8N"
      "Ul0V4" },
    { NULL, 0, 0, NULL }
};


static void
check(int ok, int line, const char *what)
{
    if (ok) {
        passed++;
        return;
    }

    failed++;
    printf("FAIL line %d: %s\n", line, what);
}


static void
check_rc(int got, int want, int line, const char *what)
{
    if (got == want) {
        passed++;
        return;
    }

    failed++;
    printf("FAIL line %d: %s = %d (%s), want %d (%s)\n", line, what,
           got, ngx_chat_jwt_strerror(got), want, ngx_chat_jwt_strerror(want));
}


static int
verify(const char *token, size_t len, int64_t leeway,
    ngx_chat_jwt_claims_t *claims)
{
    return ngx_chat_jwt_verify((const uint8_t *) token, len, key, KEY_LEN,
                               NOW, leeway, claims);
}


static int
verify_str(const char *token, int64_t leeway)
{
    ngx_chat_jwt_claims_t  c;

    return verify(token, strlen(token), leeway, &c);
}


static int
b64_decode_str(const char *s, uint8_t *out, size_t *n)
{
    return ngx_chat_base64url_decode(out, n, (const uint8_t *) s, strlen(s));
}


static void
test_base64url(void)
{
    size_t         i, n, len;
    uint8_t        src[300], enc[400], dec[300];
    const char    *bad[] = {
        "Zg==", "Zm8=", "Zg=", "=", "Zm9v====", "+/8", "Zm+v", "Zm/v",
        "Zm9 v", " Zm9v", "Zm9v\n", "Zm9v\t", "Z", "Zm9vY", "Zm9vYmFyZ",
        "Zh", "Zm9", "Zm-", "Z.9v", "Zm9v%", "Zm9v\xc3\xa9", NULL
    };
    const struct {
        const char  *plain;
        const char  *b64;
    } rfc4648[] = {
        { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
        { "foobar", "Zm9vYmFy" }, { NULL, NULL }
    };

    /* RFC 4648 section 10 vectors, padding removed */

    for (i = 0; rfc4648[i].plain; i++) {
        len = strlen(rfc4648[i].plain);
        n = ngx_chat_base64url_encode(enc, (const uint8_t *) rfc4648[i].plain,
                                      len);
        CHECK(n == strlen(rfc4648[i].b64)
              && memcmp(enc, rfc4648[i].b64, n) == 0);
        CHECK(n == NGX_CHAT_BASE64URL_ENCODED_LEN(len));

        n = 99;
        CHECK_RC(b64_decode_str(rfc4648[i].b64, dec, &n), NGX_CHAT_JWT_OK);
        CHECK(n == len && memcmp(dec, rfc4648[i].plain, len) == 0);
    }

    /* the url-safe alphabet: 0xfb 0xff is "+/8=" in plain base64 */

    src[0] = 0xfb;
    src[1] = 0xff;
    n = ngx_chat_base64url_encode(enc, src, 2);
    CHECK(n == 3 && memcmp(enc, "-_8", 3) == 0);

    CHECK_RC(b64_decode_str("-_8", dec, &n), NGX_CHAT_JWT_OK);
    CHECK(n == 2 && dec[0] == 0xfb && dec[1] == 0xff);

    CHECK_RC(b64_decode_str("AAAA-___", dec, &n), NGX_CHAT_JWT_OK);
    CHECK(n == 6 && dec[3] == 0xfb && dec[4] == 0xff && dec[5] == 0xff);

    /* strict rejections; *dst_len must stay untouched */

    for (i = 0; bad[i]; i++) {
        n = 12345;
        CHECK_RC(b64_decode_str(bad[i], dec, &n), NGX_CHAT_JWT_EFORMAT);
        CHECK(n == 12345);
    }

    n = 1;
    CHECK_RC(ngx_chat_base64url_decode(dec, &n, (const uint8_t *) "Zm\0v", 4),
             NGX_CHAT_JWT_EFORMAT);

    /* len % 4 == 1 even when the byte after the end would complete it */

    CHECK_RC(ngx_chat_base64url_decode(dec, &n, (const uint8_t *) "ZAAA", 1),
             NGX_CHAT_JWT_EFORMAT);
    CHECK_RC(ngx_chat_base64url_decode(dec, &n,
                                       (const uint8_t *) "Zm9vYAAA", 5),
             NGX_CHAT_JWT_EFORMAT);
    CHECK_RC(ngx_chat_base64url_decode(dec, &n, (const uint8_t *) "Zm9vYg", 6),
             NGX_CHAT_JWT_OK);
    CHECK(n == 4 && memcmp(dec, "foob", 4) == 0);

    /* every byte value, every length up to 300: encode, decode, compare */

    for (i = 0; i < sizeof(src); i++) {
        src[i] = (uint8_t) (i * 151 + 7);
    }

    for (len = 0; len <= sizeof(src); len++) {
        n = ngx_chat_base64url_encode(enc, src, len);
        if (n != NGX_CHAT_BASE64URL_ENCODED_LEN(len)
            || ngx_chat_base64url_decode(dec, &n, enc, n) != NGX_CHAT_JWT_OK
            || n != len || memcmp(dec, src, len) != 0
            || n > NGX_CHAT_BASE64URL_DECODED_MAX(
                       NGX_CHAT_BASE64URL_ENCODED_LEN(len)))
        {
            break;
        }
    }

    CHECK(len == sizeof(src) + 1);
}


static void
test_id_valid(void)
{
    char         id[NGX_CHAT_ID_MAX + 2];
    size_t       i;
    const char  *good[] = {
        "a", "Z", "0", "alice", "u@example.com", "dev-1_x.Y",
        "._@-", NULL
    };
    const char  *bad[] = {
        "", "a b", "a/b", "a+b", "a:b", "a\"b", "a\\b", "caf\xc3\xa9",
        "a\tb", "a\nb", "a%20", NULL
    };

    for (i = 0; good[i]; i++) {
        CHECK(ngx_chat_id_valid((const uint8_t *) good[i], strlen(good[i])));
    }

    for (i = 0; bad[i]; i++) {
        CHECK(!ngx_chat_id_valid((const uint8_t *) bad[i], strlen(bad[i])));
    }

    CHECK(!ngx_chat_id_valid((const uint8_t *) "a\0b", 3));

    memset(id, 'x', sizeof(id));
    CHECK(ngx_chat_id_valid((const uint8_t *) id, NGX_CHAT_ID_MAX));
    CHECK(!ngx_chat_id_valid((const uint8_t *) id, NGX_CHAT_ID_MAX + 1));
}


/*
 * RFC 7515 appendix A.1: a JWS with HS256 and a JWK "oct" key.  The header
 * has typ and alg with CRLFs between members; the claims are iss, exp and
 * a URI-named boolean.
 */

static void
test_rfc7515(void)
{
    int                     rc;
    size_t                  n, klen;
    unsigned int            mdlen;
    ngx_chat_jwt_claims_t   c;
    uint8_t                 k[64], md[EVP_MAX_MD_SIZE], enc[64];
    static const char       jwk_k[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0i"
        "PS4hcgUuTwjAzZr1Z9CAow";
    static const char       input[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        "."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
        "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    static const char       token[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        "."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
        "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        "."
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    CHECK_RC(b64_decode_str(jwk_k, k, &klen), NGX_CHAT_JWT_OK);
    CHECK(klen == 64);

    CHECK(HMAC(EVP_sha256(), k, (int) klen, (const uint8_t *) input,
               sizeof(input) - 1, md, &mdlen) != NULL);
    CHECK(mdlen == 32);

    n = ngx_chat_base64url_encode(enc, md, mdlen);
    CHECK(n == 43
          && memcmp(enc, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", 43)
             == 0);

    /*
     * the header passes and the signature matches, so verify gets as far
     * as the claims, which lack sub and dev
     */

    rc = ngx_chat_jwt_verify((const uint8_t *) token, sizeof(token) - 1, k,
                             klen, 1300819379, 0, &c);
    CHECK_RC(rc, NGX_CHAT_JWT_ECLAIMS);

    k[63] ^= 1;
    rc = ngx_chat_jwt_verify((const uint8_t *) token, sizeof(token) - 1, k,
                             klen, 1300819379, 0, &c);
    CHECK_RC(rc, NGX_CHAT_JWT_ESIG);
}


static void
test_vectors(void)
{
    int                     rc;
    const vector_t         *v;
    ngx_chat_jwt_claims_t   c;

    for (v = vectors; v->name; v++) {
        rc = verify(v->token, strlen(v->token), v->leeway, &c);

        if (rc == v->rc) {
            passed++;
            continue;
        }

        failed++;
        printf("FAIL vector \"%s\": %d (%s), want %d (%s)\n", v->name,
               rc, ngx_chat_jwt_strerror(rc), v->rc,
               ngx_chat_jwt_strerror(v->rc));
    }

    /* claims of the valid ones */

    v = &vectors[0];
    CHECK(strcmp(v->name, "valid") == 0);

    memset(&c, 0xaa, sizeof(c));
    CHECK_RC(verify(v->token, strlen(v->token), 0, &c), NGX_CHAT_JWT_OK);
    CHECK(c.sub_len == 5 && strcmp(c.sub, "alice") == 0);
    CHECK(c.dev_len == 7 && strcmp(c.dev, "phone-1") == 0);
    CHECK(c.exp == NOW + 3600 && c.iat == NOW - 1000 && c.nbf == 0);

    for (v = vectors; v->name; v++) {
        rc = verify(v->token, strlen(v->token), v->leeway, &c);

        if (strcmp(v->name, "extra claims ignored") == 0) {
            CHECK_RC(rc, NGX_CHAT_JWT_OK);
            CHECK(strcmp(c.sub, "u@example.com") == 0 && c.sub_len == 13);
            CHECK(strcmp(c.dev, "d.1_x-Y") == 0 && c.dev_len == 7);
            CHECK(c.exp == NOW + 60 && c.nbf == NOW - 60 && c.iat == 0);

        } else if (strcmp(v->name, "64-char ids") == 0) {
            CHECK_RC(rc, NGX_CHAT_JWT_OK);
            CHECK(c.sub_len == 64 && c.dev_len == 64);
            CHECK(strlen(c.sub) == 64 && strlen(c.dev) == 64);
            CHECK(c.sub[63] == 'a' && c.dev[0] == 'D');

        } else if (strcmp(v->name, "exp INT64_MAX") == 0) {
            CHECK_RC(rc, NGX_CHAT_JWT_OK);
            CHECK(c.exp == INT64_MAX);

        } else if (strcmp(v->name, "escaped sub") == 0) {
            CHECK_RC(rc, NGX_CHAT_JWT_OK);
            CHECK(strcmp(c.sub, "alice") == 0);

        } else if (strcmp(v->name, "expired") == 0) {
            /* filled even though rejected, for the log line */
            CHECK_RC(rc, NGX_CHAT_JWT_EEXPIRED);
            CHECK(strcmp(c.sub, "alice") == 0 && c.exp == NOW - 10);

        } else if (strcmp(v->name, "nbf future") == 0) {
            CHECK_RC(rc, NGX_CHAT_JWT_ENOTYET);
            CHECK(strcmp(c.dev, "phone-1") == 0 && c.nbf == NOW + 60);

        } else if (strcmp(v->name, "duplicate sub") == 0) {
            CHECK_RC(rc, NGX_CHAT_JWT_ECLAIMS);
            CHECK(c.sub_len == 0 && c.sub[0] == '\0' && c.exp == 0);
        }
    }

    /* huge leeway and far-off times must not overflow */

    v = &vectors[0];
    CHECK_RC(ngx_chat_jwt_verify((const uint8_t *) v->token,
                                 strlen(v->token), key, KEY_LEN, INT64_MAX,
                                 INT64_MAX, &c),
             NGX_CHAT_JWT_OK);
    CHECK_RC(ngx_chat_jwt_verify((const uint8_t *) v->token,
                                 strlen(v->token), key, KEY_LEN, INT64_MAX,
                                 0, &c),
             NGX_CHAT_JWT_EEXPIRED);
    CHECK_RC(ngx_chat_jwt_verify((const uint8_t *) v->token,
                                 strlen(v->token), key, KEY_LEN, INT64_MIN,
                                 -5, &c),
             NGX_CHAT_JWT_OK);
    CHECK_RC(ngx_chat_jwt_verify((const uint8_t *) v->token,
                                 strlen(v->token), key, KEY_LEN,
                                 NOW + 3600 - 1, -5, &c),
             NGX_CHAT_JWT_OK);
}


/* any single changed character must make the valid token fail */

static void
test_tamper(void)
{
    int          rc;
    char         t[512];
    size_t       i, k, len, dot1, dot2, ok;
    const char  *subst = "AB_-.=+/ ";

    strcpy(t, vectors[0].token);
    len = strlen(t);
    dot1 = strchr(t, '.') - t;
    dot2 = strrchr(t, '.') - t;

    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_OK);

    /* a middle character of the payload: valid base64url, wrong MAC */

    t[dot1 + 10] = (t[dot1 + 10] == 'x') ? 'y' : 'x';
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_ESIG);
    strcpy(t, vectors[0].token);

    /* a middle character of the signature */

    t[dot2 + 10] = (t[dot2 + 10] == 'x') ? 'y' : 'x';
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_ESIG);
    strcpy(t, vectors[0].token);

    /* a header character; the JSON breaks or the MAC does */

    t[5] = (t[5] == 'x') ? 'y' : 'x';
    rc = verify_str(t, 0);
    CHECK(rc == NGX_CHAT_JWT_EFORMAT || rc == NGX_CHAT_JWT_ESIG);
    strcpy(t, vectors[0].token);

    /* the last signature character, flipping a used and an unused bit */

    t[len - 1] = 'n';                  /* "8" -> "n": 0x3c -> 0x27 */
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_EFORMAT);
    t[len - 1] = '4';                  /* 0x38: used bits changed */
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_ESIG);
    strcpy(t, vectors[0].token);

    /* every position, several substitutions: never OK */

    ok = 1;

    for (i = 0; i < len; i++) {
        for (k = 0; subst[k]; k++) {
            if (t[i] == subst[k]) {
                continue;
            }

            t[i] = subst[k];

            if (verify_str(t, 0) == NGX_CHAT_JWT_OK) {
                printf("FAIL tamper: accepted with [%zu] = '%c'\n", i,
                       subst[k]);
                ok = 0;
            }

            strcpy(t, vectors[0].token);
        }
    }

    CHECK(ok);

    /* dropping or adding a character */

    t[len - 1] = '\0';
    CHECK(verify_str(t, 0) != NGX_CHAT_JWT_OK);
    strcpy(t, vectors[0].token);
    t[len] = 'A';
    t[len + 1] = '\0';
    CHECK(verify_str(t, 0) != NGX_CHAT_JWT_OK);
}


static void
test_structure(void)
{
    size_t                  i, n;
    char                    t[600];
    ngx_chat_jwt_claims_t   c;
    const char             *bad[] = {
        "", ".", "..", "...", "a", "a.b", "a.b.", ".b.c", "a..c", "a.b.c.d",
        "..c", "a.b..", "eyJ9", NULL
    };

    for (i = 0; bad[i]; i++) {
        memset(&c, 0x5a, sizeof(c));
        CHECK_RC(verify_str(bad[i], 0), NGX_CHAT_JWT_EFORMAT);
        verify(bad[i], strlen(bad[i]), 0, &c);
        CHECK(c.sub_len == 0 && c.dev_len == 0 && c.exp == 0
              && c.sub[0] == '\0');
    }

    /* the valid token with extra dots, whitespace or padding */

    n = strlen(vectors[0].token);

    sprintf(t, "%s.", vectors[0].token);
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_EFORMAT);

    sprintf(t, ".%s", vectors[0].token);
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_EFORMAT);

    sprintf(t, "%s.%s", vectors[0].token, "AAAA");
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_EFORMAT);

    sprintf(t, "%s=", vectors[0].token);
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_EFORMAT);

    sprintf(t, "%s\n", vectors[0].token);
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_EFORMAT);

    sprintf(t, " %s", vectors[0].token);
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_EFORMAT);

    sprintf(t, "Bearer %s", vectors[0].token);
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_EFORMAT);

    /* a NUL inside: the length given wins, NUL is not base64url */

    memcpy(t, vectors[0].token, n + 1);
    t[40] = '\0';
    CHECK_RC(verify(t, n, 0, &c), NGX_CHAT_JWT_EFORMAT);

    /* a signature that is valid base64url but not 32 bytes */

    memcpy(t, vectors[0].token, n + 1);
    t[n - 3] = '\0';
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_ESIG);
    sprintf(t, "%sAAAA", vectors[0].token);
    CHECK_RC(verify_str(t, 0), NGX_CHAT_JWT_ESIG);

    /* secret too short, for verify and sign alike */

    CHECK_RC(ngx_chat_jwt_verify((const uint8_t *) vectors[0].token, n, key,
                                 NGX_CHAT_JWT_SECRET_MIN - 1, NOW, 0, &c),
             NGX_CHAT_JWT_ESECRET);
    CHECK_RC(ngx_chat_jwt_verify((const uint8_t *) vectors[0].token, n, key,
                                 0, NOW, 0, &c),
             NGX_CHAT_JWT_ESECRET);
}


/*
 * Builds a correctly signed token of exactly "total" bytes by padding an
 * ignored claim, with HMAC called here rather than in our code.
 */

static size_t
make_sized(char *out, size_t total)
{
    size_t        hlen, want, plen, n;
    unsigned int  mdlen;
    uint8_t       md[EVP_MAX_MD_SIZE];
    char          json[4096];
    const char   *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

    /* header, dot, payload, dot, 43 signature characters */

    hlen = ngx_chat_base64url_encode((uint8_t *) out, (const uint8_t *) hdr,
                                     strlen(hdr));
    want = total - hlen - 1 - 1 - 43;

    /* base64url of plen bytes is want characters */
    plen = want * 3 / 4;
    if (NGX_CHAT_BASE64URL_ENCODED_LEN(plen) != want) {
        return 0;
    }

    n = sprintf(json, "{\"sub\":\"alice\",\"dev\":\"phone-1\",\"exp\":%d,"
                "\"pad\":\"", NOW + 60);
    memset(json + n, 'p', plen - n - 2);
    memcpy(json + plen - 2, "\"}", 2);

    out[hlen] = '.';
    n = hlen + 1;
    n += ngx_chat_base64url_encode((uint8_t *) out + n, (uint8_t *) json,
                                   plen);

    HMAC(EVP_sha256(), key, KEY_LEN, (uint8_t *) out, n, md, &mdlen);

    out[n++] = '.';
    n += ngx_chat_base64url_encode((uint8_t *) out + n, md, mdlen);
    out[n] = '\0';

    return n;
}


static void
test_size_limit(void)
{
    char                    t[NGX_CHAT_JWT_MAX_LEN + 64];
    ngx_chat_jwt_claims_t   c;

    CHECK(make_sized(t, NGX_CHAT_JWT_MAX_LEN) == NGX_CHAT_JWT_MAX_LEN);
    CHECK_RC(verify(t, NGX_CHAT_JWT_MAX_LEN, 0, &c), NGX_CHAT_JWT_OK);
    CHECK(strcmp(c.sub, "alice") == 0);

    CHECK(make_sized(t, NGX_CHAT_JWT_MAX_LEN + 1) == NGX_CHAT_JWT_MAX_LEN + 1);
    CHECK_RC(verify(t, NGX_CHAT_JWT_MAX_LEN + 1, 0, &c),
             NGX_CHAT_JWT_EFORMAT);

    memset(t, 'A', sizeof(t));
    t[10] = '.';
    t[20] = '.';
    CHECK_RC(verify(t, sizeof(t), 0, &c), NGX_CHAT_JWT_EFORMAT);
}


static void
test_sign(void)
{
    int                     rc;
    size_t                  n, len, i;
    char                    out[NGX_CHAT_JWT_SIGN_MAX], small[400];
    char                    id[NGX_CHAT_ID_MAX + 1];
    ngx_chat_jwt_claims_t   c;
    const char             *ids[] = {
        "a", "alice", "u@example.com", "Dev-1_x.Y@z", NULL
    };

    /* known answer: the python-minted "valid" vector, byte for byte */

    rc = ngx_chat_jwt_sign("alice", 5, "phone-1", 7, NOW + 3600, NOW - 1000,
                           key, KEY_LEN, out, sizeof(out), &len);
    CHECK_RC(rc, NGX_CHAT_JWT_OK);
    CHECK(len == strlen(vectors[0].token)
          && strcmp(out, vectors[0].token) == 0);

    /* round trips */

    for (i = 0; ids[i]; i++) {
        rc = ngx_chat_jwt_sign(ids[i], strlen(ids[i]), ids[i],
                               strlen(ids[i]), NOW + 1, 0, key, KEY_LEN, out,
                               sizeof(out), &len);
        CHECK_RC(rc, NGX_CHAT_JWT_OK);
        CHECK(len == strlen(out));
        CHECK_RC(verify(out, len, 0, &c), NGX_CHAT_JWT_OK);
        CHECK(strcmp(c.sub, ids[i]) == 0 && strcmp(c.dev, ids[i]) == 0);
        CHECK(c.sub_len == strlen(ids[i]) && c.exp == NOW + 1);
        CHECK(c.iat == 0 && c.nbf == 0);
        CHECK_RC(verify(out, len, 1, &c), NGX_CHAT_JWT_OK);
        CHECK_RC(ngx_chat_jwt_verify((uint8_t *) out, len, key, KEY_LEN,
                                     NOW + 1, 0, &c),
                 NGX_CHAT_JWT_EEXPIRED);
    }

    /* the largest token fits NGX_CHAT_JWT_SIGN_MAX */

    memset(id, '@', NGX_CHAT_ID_MAX);
    id[NGX_CHAT_ID_MAX] = '\0';
    rc = ngx_chat_jwt_sign(id, NGX_CHAT_ID_MAX, id, NGX_CHAT_ID_MAX,
                           INT64_MAX, INT64_MAX, key, KEY_LEN, out,
                           sizeof(out), &len);
    CHECK_RC(rc, NGX_CHAT_JWT_OK);
    CHECK_RC(verify(out, len, 0, &c), NGX_CHAT_JWT_OK);
    CHECK(c.exp == INT64_MAX && c.iat == INT64_MAX);
    CHECK(strcmp(c.sub, id) == 0);

    /* out_size must hold the token and its NUL */

    n = len;
    memset(small, '#', sizeof(small));
    rc = ngx_chat_jwt_sign(id, NGX_CHAT_ID_MAX, id, NGX_CHAT_ID_MAX,
                           INT64_MAX, INT64_MAX, key, KEY_LEN, small, n,
                           &len);
    CHECK_RC(rc, NGX_CHAT_JWT_ENOSPACE);
    CHECK(small[0] == '#');
    rc = ngx_chat_jwt_sign(id, NGX_CHAT_ID_MAX, id, NGX_CHAT_ID_MAX,
                           INT64_MAX, INT64_MAX, key, KEY_LEN, small, n + 1,
                           &len);
    CHECK_RC(rc, NGX_CHAT_JWT_OK);
    CHECK(len == n && small[n] == '\0' && small[n + 1] == '#');
    CHECK_RC(ngx_chat_jwt_sign("a", 1, "b", 1, 1, 0, key, KEY_LEN, small, 0,
                               &len),
             NGX_CHAT_JWT_ENOSPACE);

    /* refused inputs */

    CHECK_RC(ngx_chat_jwt_sign(id, NGX_CHAT_ID_MAX + 1, "d", 1, NOW, 0, key,
                               KEY_LEN, out, sizeof(out), &len),
             NGX_CHAT_JWT_ECLAIMS);
    CHECK_RC(ngx_chat_jwt_sign("", 0, "d", 1, NOW, 0, key, KEY_LEN, out,
                               sizeof(out), &len),
             NGX_CHAT_JWT_ECLAIMS);
    CHECK_RC(ngx_chat_jwt_sign("u", 1, "a\"b", 3, NOW, 0, key, KEY_LEN, out,
                               sizeof(out), &len),
             NGX_CHAT_JWT_ECLAIMS);
    CHECK_RC(ngx_chat_jwt_sign("u", 1, "d", 1, 0, 0, key, KEY_LEN, out,
                               sizeof(out), &len),
             NGX_CHAT_JWT_ECLAIMS);
    CHECK_RC(ngx_chat_jwt_sign("u", 1, "d", 1, NOW, -1, key, KEY_LEN, out,
                               sizeof(out), &len),
             NGX_CHAT_JWT_ECLAIMS);
    CHECK_RC(ngx_chat_jwt_sign("u", 1, "d", 1, NOW, 0, key,
                               NGX_CHAT_JWT_SECRET_MIN - 1, out, sizeof(out),
                               &len),
             NGX_CHAT_JWT_ESECRET);

    /* a token signed with another secret */

    rc = ngx_chat_jwt_sign("u", 1, "d", 1, NOW + 60, 0, key + 1, KEY_LEN - 1,
                           out, sizeof(out), &len);
    CHECK_RC(rc, NGX_CHAT_JWT_OK);
    CHECK_RC(verify(out, len, 0, &c), NGX_CHAT_JWT_ESIG);
}


static void
test_strerror(void)
{
    int          rc, k;
    const char  *s[10];

    for (rc = 0; rc >= -9; rc--) {
        s[-rc] = ngx_chat_jwt_strerror(rc);
        CHECK(s[-rc] != NULL && s[-rc][0] != '\0');

        for (k = 0; k < -rc; k++) {
            CHECK(strcmp(s[k], s[-rc]) != 0);
        }
    }

    CHECK(strcmp(ngx_chat_jwt_strerror(NGX_CHAT_JWT_OK), "ok") == 0);
    CHECK(strcmp(ngx_chat_jwt_strerror(-100), "unknown token error") == 0);
    CHECK(strcmp(ngx_chat_jwt_strerror(1), "unknown token error") == 0);
}


int
main(void)
{
    test_base64url();
    test_id_valid();
    test_rfc7515();
    test_vectors();
    test_tamper();
    test_structure();
    test_size_limit();
    test_sign();
    test_strerror();

    printf("%u passed, %u failed\n", passed, failed);

    return failed ? 1 : 0;
}
