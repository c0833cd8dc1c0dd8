/**
 * Compact tables for state that grows with the repository: no JS object or
 * string per path (DESIGN.md invariant 11). The mirror's index and the
 * primary's manifest are both built on them.
 */
export { capacityFor, createObjectTable, grow, type ObjectTable } from './object-table.js';
export { createPathTable, hashPath, type PathTable } from './path-table.js';
