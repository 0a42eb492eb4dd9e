// One line of the benchmark table; every section returns these.
export interface BenchRow {
  section: string;
  name: string;
  value: number;
  unit: string;
  target?: string;
  detail?: string;
}
