/**
 * Compact tables for state that grows with the repository: no JS object or
 * string per path (DESIGN.md invariant 11). The mirror's index and the
 * primary's manifest are both built on them. With `{ shared: true }` their
 * arrays live in SharedArrayBuffers, so other threads read them in place.
 */
export { capacityFor, checkDigestHex, createObjectTable, hexOfDigest, type ObjectArrays, type ObjectTable } from './object-table.js';
export { checkedPathHash, createPathTable, type PathTable, type PathTableOptions } from './path-table.js';
export { findPathId, hashPath, mix32, storedPathBytes, type PathArrays } from './path-lookup.js';
export { allocArray, grow, type TableMemory } from './table-memory.js';
