//go:build wasip1

// Canonical-ABI glue for world newsroom:stage/stage@0.1.0, hand-written (wit-bindgen-go is
// not used). Generic: the same for every Go stage. The stage itself provides
//
//	func manifest() Manifest
//	func run(in *Input) ([]Field, error)
//
// Memory: every allocation made for the host (the arguments it passes in through
// cabi_realloc, the results returned) is kept reachable in `pinned` until the post-return
// function of the export frees it all; Go's GC does not move objects.
package main

import (
	"runtime"
	"unsafe"
)

var pinned [][]uint64

func alloc(size uint32) uint32 {
	if size == 0 {
		return 8
	}
	buf := make([]uint64, (size+7)/8) // 8-aligned: enough for every canonical-ABI type
	pinned = append(pinned, buf)
	return uint32(uintptr(unsafe.Pointer(&buf[0])))
}

func release() {
	clear(pinned)
	pinned = pinned[:0]
}

//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	p := alloc(newSize)
	if oldPtr != 0 && oldSize > 0 && newSize > 0 {
		copy(bytesAt(p, min(oldSize, newSize)), bytesAt(oldPtr, min(oldSize, newSize)))
	}
	return p
}

func addr(p uint32) unsafe.Pointer { return unsafe.Add(nil, uintptr(p)) }

func bytesAt(p, n uint32) []byte { return unsafe.Slice((*byte)(addr(p)), n) }

func ldU8(p uint32) uint8      { return *(*uint8)(addr(p)) }
func ldU32(p uint32) uint32    { return *(*uint32)(addr(p)) }
func ldS64(p uint32) int64     { return *(*int64)(addr(p)) }
func ldF64(p uint32) float64   { return *(*float64)(addr(p)) }
func stU8(p uint32, v uint8)   { *(*uint8)(addr(p)) = v }
func stU32(p uint32, v uint32) { *(*uint32)(addr(p)) = v }

// ldStr copies the string whose (ptr, len) is at p.
func ldStr(p uint32) string {
	n := ldU32(p + 4)
	if n == 0 {
		return ""
	}
	return string(bytesAt(ldU32(p), n))
}

func ldStrs(p uint32) []string {
	base, n := ldU32(p), ldU32(p+4)
	out := make([]string, n)
	for i := range out {
		out[i] = ldStr(base + uint32(i)*8)
	}
	return out
}

func ldPairs(p uint32) [][2]string {
	base, n := ldU32(p), ldU32(p+4)
	out := make([][2]string, n)
	for i := range out {
		e := base + uint32(i)*16
		out[i] = [2]string{ldStr(e), ldStr(e + 8)}
	}
	return out
}

// stStr writes (ptr, len) of a pinned copy of s at p.
func stStr(p uint32, s string) {
	a := alloc(uint32(len(s)))
	copy(bytesAt(a, uint32(len(s))), s)
	stU32(p, a)
	stU32(p+4, uint32(len(s)))
}

func stStrs(p uint32, ss []string) {
	base := alloc(uint32(len(ss)) * 8)
	for i, s := range ss {
		stStr(base+uint32(i)*8, s)
	}
	stU32(p, base)
	stU32(p+4, uint32(len(ss)))
}

// Layouts (canonical ABI): story 56 bytes, enrichment 56 (align 8) at 56, config at 112,
// now-ms at 120; topic and entity 24 bytes (f64 at 16); tuple<string,string> and field 16.
func ldInput(p uint32) Input {
	var in Input
	s := p
	in.Story = Story{
		ID: ldStr(s), Version: ldU32(s + 8), Headline: ldStr(s + 12), Body: ldStr(s + 20),
		Language: ldStr(s + 28), Source: ldStr(s + 36), Urgency: ldU32(s + 44),
		Keywords: ldStrs(s + 48),
	}
	e := p + 56
	in.Enrichment.Language = ldStr(e)
	base, n := ldU32(e+8), ldU32(e+12)
	in.Enrichment.Topics = make([]Topic, n)
	for i := range in.Enrichment.Topics {
		t := base + uint32(i)*24
		in.Enrichment.Topics[i] = Topic{Code: ldStr(t), Label: ldStr(t + 8), Score: ldF64(t + 16)}
	}
	base, n = ldU32(e+16), ldU32(e+20)
	in.Enrichment.Entities = make([]Entity, n)
	for i := range in.Enrichment.Entities {
		t := base + uint32(i)*24
		in.Enrichment.Entities[i] = Entity{Name: ldStr(t), Kind: ldStr(t + 8), Salience: ldF64(t + 16)}
	}
	in.Enrichment.Summary = ldStr(e + 24)
	in.Enrichment.WordCount = ldU32(e + 32)
	in.Enrichment.BreakingScore = ldF64(e + 40)
	in.Enrichment.Attributes = ldPairs(e + 48)
	in.Config = ldPairs(p + 112)
	in.NowMs = ldS64(p + 120)
	return in
}

// export manifest: func() -> manifest  (returned through a 32-byte area)
//
//go:wasmexport manifest
func exportManifest() uint32 {
	m := manifest()
	area := alloc(32)
	stStr(area, m.Name)
	stStr(area+8, m.Version)
	stStrs(area+16, m.Reads)
	stStrs(area+24, m.Writes)
	return area
}

//go:wasmexport cabi_post_manifest
func postManifest(uint32) { release() }

// export run: func(input: input) -> result<list<field>, string>
// (input passed by pointer: more than 16 flat values; result through a 12-byte area:
// discriminant u8 at 0, payload (ptr, len) at 4).
//
//go:wasmexport run
func exportRun(p uint32) uint32 {
	in := ldInput(p)
	fields, err := safeRun(&in)
	area := alloc(12)
	if err != nil {
		stU8(area, 1)
		stStr(area+4, err.Error())
		return area
	}
	stU8(area, 0)
	base := alloc(uint32(len(fields)) * 16)
	for i, f := range fields {
		stStr(base+uint32(i)*16, f.Name)
		stStr(base+uint32(i)*16+8, f.Value)
	}
	stU32(area+4, base)
	stU32(area+8, uint32(len(fields)))
	return area
}

//go:wasmexport cabi_post_run
func postRun(uint32) { release() }

type panicError struct{ msg string }

func (e panicError) Error() string { return "panic: " + e.msg }

// safeRun turns a panic of the stage into Err instead of a trap.
func safeRun(in *Input) (fields []Field, err error) {
	defer func() {
		if r := recover(); r != nil {
			switch v := r.(type) {
			case error:
				err = panicError{v.Error()}
			case string:
				err = panicError{v}
			default:
				err = panicError{"(non-string value)"}
			}
		}
	}()
	return run(in)
}

// ---- imports: interface newsroom:stage/host@0.1.0 ----

//go:wasmimport newsroom:stage/host@0.1.0 log
func hostLog(level, msgPtr, msgLen uint32)

//go:wasmimport newsroom:stage/host@0.1.0 cache-get
func hostCacheGet(keyPtr, keyLen, retPtr uint32)

//go:wasmimport newsroom:stage/host@0.1.0 cache-set
func hostCacheSet(keyPtr, keyLen, valPtr, valLen, ttl uint32)

func strPtr(s string) uint32 {
	if len(s) == 0 {
		return 1
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

func slicePtr(b []byte) uint32 {
	if len(b) == 0 {
		return 1
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

// Log writes a log line: an event on the stage's span in the story's trace.
func Log(level Level, msg string) {
	hostLog(uint32(level), strPtr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
}

var cacheRet [3]uint32 // option<list<u8>>: discriminant at 0, (ptr, len) at 4

// CacheGet reads this stage's private cache.
func CacheGet(key string) ([]byte, bool) {
	hostCacheGet(strPtr(key), uint32(len(key)), uint32(uintptr(unsafe.Pointer(&cacheRet[0]))))
	runtime.KeepAlive(key)
	if ldU8(uint32(uintptr(unsafe.Pointer(&cacheRet[0])))) == 0 {
		return nil, false
	}
	out := make([]byte, cacheRet[2])
	copy(out, bytesAt(cacheRet[1], cacheRet[2]))
	return out, true
}

// CacheSet writes this stage's private cache.
func CacheSet(key string, value []byte, ttlSeconds uint32) {
	hostCacheSet(strPtr(key), uint32(len(key)), slicePtr(value), uint32(len(value)), ttlSeconds)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
}
