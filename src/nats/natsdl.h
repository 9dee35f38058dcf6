/*
 * nats.c, loaded when first needed.
 *
 * Most roj processes never talk to NATS: an embedded swarm, `roj
 * generate`, `roj bench`, every agent of `roj run` without --nats. Linking
 * nats.c would still load it and its TLS libraries (libssl, libcrypto)
 * into each of them: about 1.9 MiB of resident memory and their start-up
 * relocations. So libroj does not link nats.c. natsdl_load() opens it
 * with dlopen() on first use, and the NATS code in src/nats/, src/run/
 * and src/cli/ calls it through a table of function pointers.
 *
 * Include this header instead of <nats/nats.h>. It defines each nats.c
 * function that roj uses as a macro for its table entry, so that call
 * sites read as plain nats.c calls. A function missing from NATSDL_FUNCS
 * fails to link, since libnats is not on the link line; one listed but
 * not exported by the installed library fails natsdl_load() with its name.
 * The environment variable ROJ_NATS_LIB, when set, names the library file
 * to open instead of libnats.so.MAJOR.MINOR.
 *
 * Every entry is valid once natsdl_load() has returned ROJ_OK, and
 * natsx_connect() calls it before any other nats.c call, so code that
 * holds a connection needs no check of its own.
 */
#ifndef ROJ_NATS_NATSDL_H
#define ROJ_NATS_NATSDL_H

#include <stdbool.h>

#include <nats/nats.h>

#include "roj/roj.h"

#define NATSDL_FUNCS(X) \
    X(jsAccountInfo_Destroy) \
    X(jsConsumerConfig_Init) \
    X(jsConsumerInfo_Destroy) \
    X(jsCtx_Destroy) \
    X(jsMsgMetaData_Destroy) \
    X(jsOptions_Init) \
    X(jsPubAck_Destroy) \
    X(jsPubOptions_Init) \
    X(jsStreamConfig_Init) \
    X(jsStreamInfo_Destroy) \
    X(jsSubOptions_Init) \
    X(js_AddConsumer) \
    X(js_AddStream) \
    X(js_CreateKeyValue) \
    X(js_GetAccountInfo) \
    X(js_GetConsumerInfo) \
    X(js_GetStreamInfo) \
    X(js_KeyValue) \
    X(js_Publish) \
    X(js_PullSubscribe) \
    X(js_UpdateConsumer) \
    X(kvConfig_Init) \
    X(kvEntry_Destroy) \
    X(kvEntry_Key) \
    X(kvEntry_Operation) \
    X(kvEntry_Revision) \
    X(kvEntry_Value) \
    X(kvEntry_ValueLen) \
    X(kvEntry_ValueString) \
    X(kvKeysList_Destroy) \
    X(kvStore_Create) \
    X(kvStore_Delete) \
    X(kvStore_Destroy) \
    X(kvStore_Get) \
    X(kvStore_Keys) \
    X(kvStore_Put) \
    X(kvStore_Update) \
    X(kvStore_Watch) \
    X(kvWatchOptions_Init) \
    X(kvWatcher_Destroy) \
    X(kvWatcher_Next) \
    X(kvWatcher_Stop) \
    X(natsConnection_Close) \
    X(natsConnection_Connect) \
    X(natsConnection_Destroy) \
    X(natsConnection_GetConnectedUrl) \
    X(natsConnection_GetMaxPayload) \
    X(natsConnection_IsClosed) \
    X(natsConnection_JetStream) \
    X(natsMsgList_Destroy) \
    X(natsMsg_AckSync) \
    X(natsMsg_GetData) \
    X(natsMsg_GetDataLength) \
    X(natsMsg_GetMetaData) \
    X(natsMsg_GetSubject) \
    X(natsMsg_InProgress) \
    X(natsMsg_Nak) \
    X(natsMsg_NakWithDelay) \
    X(natsMsg_Term) \
    X(natsOptions_Create) \
    X(natsOptions_Destroy) \
    X(natsOptions_LoadCATrustedCertificates) \
    X(natsOptions_LoadCertificatesChain) \
    X(natsOptions_SetDisconnectedCB) \
    X(natsOptions_SetErrorHandler) \
    X(natsOptions_SetMaxPingsOut) \
    X(natsOptions_SetMaxReconnect) \
    X(natsOptions_SetNKeyFromSeed) \
    X(natsOptions_SetName) \
    X(natsOptions_SetPingInterval) \
    X(natsOptions_SetReconnectBufSize) \
    X(natsOptions_SetReconnectJitter) \
    X(natsOptions_SetReconnectWait) \
    X(natsOptions_SetReconnectedCB) \
    X(natsOptions_SetSecure) \
    X(natsOptions_SetSendAsap) \
    X(natsOptions_SetServers) \
    X(natsOptions_SetTimeout) \
    X(natsOptions_SetToken) \
    X(natsOptions_SetUserCredentialsFromFiles) \
    X(natsOptions_SetUserInfo) \
    X(natsStatus_GetText) \
    X(natsSubscription_Destroy) \
    X(natsSubscription_Fetch) \
    X(nats_CloseAndWait) \
    X(nats_GetLastError) \

#define NATSDL_MEMBER(name) __typeof__(name) *name;
typedef struct natsdl_table {
    NATSDL_FUNCS(NATSDL_MEMBER)
} natsdl_table;
#undef NATSDL_MEMBER

extern natsdl_table natsdl_fn;

/* Opens nats.c and fills natsdl_fn once per process, so later calls
 * return the first call's outcome. Thread-safe. On failure the error
 * names the library and the Debian package that provides it. */
roj_status natsdl_load(void);

/* Whether natsdl_load() has succeeded. */
bool natsdl_loaded(void);

#ifndef NATSDL_NO_MACROS
#define jsAccountInfo_Destroy natsdl_fn.jsAccountInfo_Destroy
#define jsConsumerConfig_Init natsdl_fn.jsConsumerConfig_Init
#define jsConsumerInfo_Destroy natsdl_fn.jsConsumerInfo_Destroy
#define jsCtx_Destroy natsdl_fn.jsCtx_Destroy
#define jsMsgMetaData_Destroy natsdl_fn.jsMsgMetaData_Destroy
#define jsOptions_Init natsdl_fn.jsOptions_Init
#define jsPubAck_Destroy natsdl_fn.jsPubAck_Destroy
#define jsPubOptions_Init natsdl_fn.jsPubOptions_Init
#define jsStreamConfig_Init natsdl_fn.jsStreamConfig_Init
#define jsStreamInfo_Destroy natsdl_fn.jsStreamInfo_Destroy
#define jsSubOptions_Init natsdl_fn.jsSubOptions_Init
#define js_AddConsumer natsdl_fn.js_AddConsumer
#define js_AddStream natsdl_fn.js_AddStream
#define js_CreateKeyValue natsdl_fn.js_CreateKeyValue
#define js_GetAccountInfo natsdl_fn.js_GetAccountInfo
#define js_GetConsumerInfo natsdl_fn.js_GetConsumerInfo
#define js_GetStreamInfo natsdl_fn.js_GetStreamInfo
#define js_KeyValue natsdl_fn.js_KeyValue
#define js_Publish natsdl_fn.js_Publish
#define js_PullSubscribe natsdl_fn.js_PullSubscribe
#define js_UpdateConsumer natsdl_fn.js_UpdateConsumer
#define kvConfig_Init natsdl_fn.kvConfig_Init
#define kvEntry_Destroy natsdl_fn.kvEntry_Destroy
#define kvEntry_Key natsdl_fn.kvEntry_Key
#define kvEntry_Operation natsdl_fn.kvEntry_Operation
#define kvEntry_Revision natsdl_fn.kvEntry_Revision
#define kvEntry_Value natsdl_fn.kvEntry_Value
#define kvEntry_ValueLen natsdl_fn.kvEntry_ValueLen
#define kvEntry_ValueString natsdl_fn.kvEntry_ValueString
#define kvKeysList_Destroy natsdl_fn.kvKeysList_Destroy
#define kvStore_Create natsdl_fn.kvStore_Create
#define kvStore_Delete natsdl_fn.kvStore_Delete
#define kvStore_Destroy natsdl_fn.kvStore_Destroy
#define kvStore_Get natsdl_fn.kvStore_Get
#define kvStore_Keys natsdl_fn.kvStore_Keys
#define kvStore_Put natsdl_fn.kvStore_Put
#define kvStore_Update natsdl_fn.kvStore_Update
#define kvStore_Watch natsdl_fn.kvStore_Watch
#define kvWatchOptions_Init natsdl_fn.kvWatchOptions_Init
#define kvWatcher_Destroy natsdl_fn.kvWatcher_Destroy
#define kvWatcher_Next natsdl_fn.kvWatcher_Next
#define kvWatcher_Stop natsdl_fn.kvWatcher_Stop
#define natsConnection_Close natsdl_fn.natsConnection_Close
#define natsConnection_Connect natsdl_fn.natsConnection_Connect
#define natsConnection_Destroy natsdl_fn.natsConnection_Destroy
#define natsConnection_GetConnectedUrl natsdl_fn.natsConnection_GetConnectedUrl
#define natsConnection_GetMaxPayload natsdl_fn.natsConnection_GetMaxPayload
#define natsConnection_IsClosed natsdl_fn.natsConnection_IsClosed
#define natsConnection_JetStream natsdl_fn.natsConnection_JetStream
#define natsMsgList_Destroy natsdl_fn.natsMsgList_Destroy
#define natsMsg_AckSync natsdl_fn.natsMsg_AckSync
#define natsMsg_GetData natsdl_fn.natsMsg_GetData
#define natsMsg_GetDataLength natsdl_fn.natsMsg_GetDataLength
#define natsMsg_GetMetaData natsdl_fn.natsMsg_GetMetaData
#define natsMsg_GetSubject natsdl_fn.natsMsg_GetSubject
#define natsMsg_InProgress natsdl_fn.natsMsg_InProgress
#define natsMsg_Nak natsdl_fn.natsMsg_Nak
#define natsMsg_NakWithDelay natsdl_fn.natsMsg_NakWithDelay
#define natsMsg_Term natsdl_fn.natsMsg_Term
#define natsOptions_Create natsdl_fn.natsOptions_Create
#define natsOptions_Destroy natsdl_fn.natsOptions_Destroy
#define natsOptions_LoadCATrustedCertificates natsdl_fn.natsOptions_LoadCATrustedCertificates
#define natsOptions_LoadCertificatesChain natsdl_fn.natsOptions_LoadCertificatesChain
#define natsOptions_SetDisconnectedCB natsdl_fn.natsOptions_SetDisconnectedCB
#define natsOptions_SetErrorHandler natsdl_fn.natsOptions_SetErrorHandler
#define natsOptions_SetMaxPingsOut natsdl_fn.natsOptions_SetMaxPingsOut
#define natsOptions_SetMaxReconnect natsdl_fn.natsOptions_SetMaxReconnect
#define natsOptions_SetNKeyFromSeed natsdl_fn.natsOptions_SetNKeyFromSeed
#define natsOptions_SetName natsdl_fn.natsOptions_SetName
#define natsOptions_SetPingInterval natsdl_fn.natsOptions_SetPingInterval
#define natsOptions_SetReconnectBufSize natsdl_fn.natsOptions_SetReconnectBufSize
#define natsOptions_SetReconnectJitter natsdl_fn.natsOptions_SetReconnectJitter
#define natsOptions_SetReconnectWait natsdl_fn.natsOptions_SetReconnectWait
#define natsOptions_SetReconnectedCB natsdl_fn.natsOptions_SetReconnectedCB
#define natsOptions_SetSecure natsdl_fn.natsOptions_SetSecure
#define natsOptions_SetSendAsap natsdl_fn.natsOptions_SetSendAsap
#define natsOptions_SetServers natsdl_fn.natsOptions_SetServers
#define natsOptions_SetTimeout natsdl_fn.natsOptions_SetTimeout
#define natsOptions_SetToken natsdl_fn.natsOptions_SetToken
#define natsOptions_SetUserCredentialsFromFiles natsdl_fn.natsOptions_SetUserCredentialsFromFiles
#define natsOptions_SetUserInfo natsdl_fn.natsOptions_SetUserInfo
#define natsStatus_GetText natsdl_fn.natsStatus_GetText
#define natsSubscription_Destroy natsdl_fn.natsSubscription_Destroy
#define natsSubscription_Fetch natsdl_fn.natsSubscription_Fetch
#define nats_CloseAndWait natsdl_fn.nats_CloseAndWait
#define nats_GetLastError natsdl_fn.nats_GetLastError
#endif

#endif
