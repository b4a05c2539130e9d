/* common/config/testdata.h — documents shared by the config tests (see testdata.c). */
#ifndef REMORA_COMMON_CONFIG_TESTDATA_H
#define REMORA_COMMON_CONFIG_TESTDATA_H

/* Every field of config.proto, each oneof member at least once; loads clean. */
extern const char tu_kitchen_yaml[];
/* The same documents as one JSON array, tab-indented. */
extern const char tu_kitchen_json[];

#endif /* REMORA_COMMON_CONFIG_TESTDATA_H */
