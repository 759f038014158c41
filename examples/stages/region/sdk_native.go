//go:build !wasip1

// Stand-ins for the host's functions in native builds (go test): Log is dropped, the cache
// lives in a map.
package main

var nativeCache = map[string][]byte{}

func Log(level Level, msg string) {}

func CacheGet(key string) ([]byte, bool) { v, ok := nativeCache[key]; return v, ok }

func CacheSet(key string, value []byte, ttlSeconds uint32) { nativeCache[key] = value }
