export * from './drill-types.js';
export * from './drill-names.js';
export * from './drill-record.js';
export { joinIds, joinCheck, type JoinFigures } from './cross-store-join.js';
export { drillHealthItem } from './drill-health.js';
export { drillEnvGroup, parseJoinSpec, parseAnomalyDrop, type DrillEnvSettings } from './drill-env.js';
