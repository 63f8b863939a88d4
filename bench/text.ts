/** The report for a terminal: aligned tables, then the setting to paste. */
import type { BenchReport } from './results.js';
import { bestLines } from '../src/cli/sweep/table.js';
import { formatTable, machineLine, packagesLine, reportTables } from './tables.js';

export function renderText(report: BenchReport): string {
  const out: string[] = [];
  out.push(`eventrail bench${report.config.quick ? ' --quick' : ''}: ${report.seconds} s`);
  out.push(`machine: ${machineLine(report)}`);
  out.push(`packages: ${packagesLine(report)}`);
  for (const t of reportTables(report)) out.push('', formatTable(t));
  const best = bestLines(report);
  if (best.length > 0) out.push('', ...best);
  if (report.notes.length > 0) out.push('', 'Notes:', ...report.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}
