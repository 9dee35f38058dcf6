/*
 * Model distribution on NATS JetStream. `roj models push` copies the
 * model and adapter files that a swarm file names into the swarm's
 * models bucket (roj_N_models, see run/nats_proto.h), and `roj agent`
 * fetches the ones missing on its machine before it loads the swarm.
 *
 * nats.c 3.4.1 has no object store, and a KV value is one message, at
 * most the server's max_payload (1 MiB by default), so a file is kept in
 * chunks of NMODELS_CHUNK_SIZE bytes under its sha256 (lowercase hex):
 *   "SHA256.I"  bytes [I * chunk_size, (I + 1) * chunk_size) of the file,
 *               I = 0, 1, ... (the last chunk may be shorter)
 *   "SHA256"    the manifest, written after every chunk:
 *               {"name": "base.gguf", "size": 4194304, "chunks": 16,
 *                "chunk_size": 262144, "sha256": SHA256}
 * A manifest is written only after all its chunks, so a push that dies
 * midway leaves no manifest and the next push writes every chunk again.
 * A fetch checks the sha256 of what it assembled, so a damaged or
 * replaced chunk is found before the file is used.
 *
 * Threading: the functions keep no state; a bucket handle may be shared
 * (see nats/natsx.h).
 */
#ifndef ROJ_RUN_NATS_MODELS_H
#define ROJ_RUN_NATS_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sha256.h"
#include "nats/natsx.h"
#include "roj/roj.h"
#include "run/nats_proto.h"

/* Bytes per chunk that push writes. Fetch accepts any chunk size from
 * 1 byte to NMODELS_MAX_CHUNK_SIZE that a manifest names. */
#define NMODELS_CHUNK_SIZE (256u * 1024u)
#define NMODELS_MAX_CHUNK_SIZE (1024u * 1024u)

/* One stored file. */
typedef struct nmodels_manifest {
    char name[256];               /* file name at push time, no folder */
    uint64_t size;                /* bytes */
    uint64_t chunks;
    uint32_t chunk_size;          /* bytes */
    char sha256[SHA256_HEX_SIZE];
} nmodels_manifest;

/* Progress of one transfer: done of total bytes of the file at path,
 * called after every chunk and once with done == 0 at the start. */
typedef void (*nmodels_progress_fn)(void *ctx, const char *path,
                                    uint64_t done, uint64_t total);

/* An open models bucket; kv belongs to it (nmodels_close). */
typedef struct nmodels_bucket {
    natsx_kv *kv;
    char name[NPROTO_NAME_MAX];
} nmodels_bucket;

/* Binds to the models bucket, creating it with `replicas` copies when
 * it does not exist (natsx_kv_open). */
roj_status nmodels_open(natsx_conn *c, const nproto_names *names,
                        int replicas, nmodels_bucket *out);

/* Binds to the models bucket without creating it. An absent bucket is
 * ROJ_ERR_NOT_FOUND, and its message suggests roj models push. */
roj_status nmodels_bind(natsx_conn *c, const nproto_names *names,
                        nmodels_bucket *out);

/* Closes the bucket's handle; a zeroed bucket is allowed. */
void nmodels_close(nmodels_bucket *b);

/* What nmodels_push did with one file. */
typedef struct nmodels_pushed {
    char sha256[SHA256_HEX_SIZE];
    uint64_t size;      /* bytes */
    uint64_t chunks;
    bool skipped;       /* a manifest with this sha256 and size existed */
    uint64_t reused;    /* chunks an interrupted push had stored already */
} nmodels_pushed;

/* Hashes the file at path and stores it in the bucket unless a manifest with
 * its sha256 and size is there already. Chunks of the same sha256 left by
 * an interrupted push are kept (a chunk key contains a whole chunk or
 * nothing), so pushing again resumes. progress may be NULL. Errors
 * name the file or the key: ROJ_ERR_IO for reads, and the natsx errors
 * of the writes. */
roj_status nmodels_push(const nmodels_bucket *b, const char *path,
                        nmodels_progress_fn progress, void *ctx,
                        nmodels_pushed *out);

/* Reads and checks the manifest of sha256: *found is false when there
 * is none. A malformed manifest is ROJ_ERR_FORMAT. */
roj_status nmodels_manifest_get(const nmodels_bucket *b,
                                const char *sha256, bool *found,
                                nmodels_manifest *m);

/* Lists every manifest of the bucket, sorted by sha256. *out is a new array
 * (free) of *n entries. Malformed manifests are skipped with a
 * warning. */
roj_status nmodels_list(const nmodels_bucket *b, nmodels_manifest **out,
                        size_t *n);

/* Downloads the file with sha256 from the bucket to path: creates path's
 * folders, writes a temporary file beside it, checks its sha256 and
 * renames it to path. `what` names the file in messages
 * ("models.base"). Errors: ROJ_ERR_NOT_FOUND when the manifest or a
 * chunk is absent; ROJ_ERR_FORMAT for a chunk of the wrong length or a
 * digest mismatch (the temporary file is deleted and the message names
 * both digests); ROJ_ERR_IO for local files. */
roj_status nmodels_fetch(const nmodels_bucket *b, const char *sha256,
                         const char *path,
                         const char *what, nmodels_progress_fn progress,
                         void *ctx);

/* For roj agent: reads the swarm file at swarm_path without loading it
 * (swarm_files_read) and fetches every model and adapter file it names
 * that does not exist, connecting through *opt only when one is
 * missing. A missing file without a sha256 in the swarm file is
 * ROJ_ERR_NOT_FOUND with a message saying to add its sha256 or copy the
 * file. *fetched (may be NULL) receives the number of files fetched. */
roj_status nmodels_fetch_missing(const char *swarm_path,
                                 const natsx_options *opt,
                                 nmodels_progress_fn progress, void *ctx,
                                 size_t *fetched);

#endif
