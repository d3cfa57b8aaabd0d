
/*
 * ngx_chat_media_event: finds the attachment objects of an event.
 *
 * A newMessage event as PostgreSQL serializes it carries
 *   "attachments": [{"attachmentId": "...", "contentType": "...",
 *                    "size": N, "sha256": "..."}, ...]
 * and each device must receive it with "url" and "urlExpiresAt" added to
 * each object, for that device.  Rather than parse and re-serialize the
 * whole event (the message text can be 64 KiB), this scanner walks the
 * JSON once, without copying, and reports where each attachment object of
 * the top-level "attachments" array ends, so the caller splices the two
 * fields in front of each closing brace.
 *
 * Pure code: no nginx header, no allocation.
 */


#ifndef _NGX_CHAT_MEDIA_EVENT_H_INCLUDED_
#define _NGX_CHAT_MEDIA_EVENT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_CHAT_MEDIA_EVENT_MAX    16      /* attachments per event */
#define NGX_CHAT_MEDIA_EVENT_DEPTH  32      /* nesting skipped */


typedef struct {
    const char              *id;            /* "attachmentId", raw bytes */
    size_t                   id_len;
    const char              *type;          /* "contentType" */
    size_t                   type_len;
    const char              *sha256;        /* "sha256" */
    size_t                   sha256_len;
    int64_t                  size;          /* "size", -1 if absent */
    size_t                   close;         /* offset of the closing '}' */
    unsigned                 empty:1;       /* the object was "{}" */
} ngx_chat_media_event_att_t;


/*
 * Scans json[0..len): a JSON object.  Fills up to max entries of a, one
 * per object element of its top-level "attachments" array (elements that
 * are not objects are skipped), in order.  String values are reported raw
 * and must contain no backslash escape (ids, types and hashes never do);
 * one that does makes the object's field absent (NULL).
 *
 * Returns the number of objects found (0 when there is no "attachments"
 * member or it is not an array), or -1 when the text is not a well-formed
 * JSON object or has more than max attachment objects.
 */
int ngx_chat_media_event_scan(const char *json, size_t len,
    ngx_chat_media_event_att_t *a, int max);


#endif /* _NGX_CHAT_MEDIA_EVENT_H_INCLUDED_ */
