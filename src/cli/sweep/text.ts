/** The sweep's report for a terminal: the table, then the setting to paste. */
import type { SweepReport } from './results.js';
import { bestLines, formatTable, machineLine, packagesLine, sweepTable } from './table.js';

export function renderSweepText(report: SweepReport): string {
  const out: string[] = [];
  out.push(`eventrail bench${report.config.quick ? ' --quick' : ''}: ${report.seconds} s`);
  out.push(`machine: ${machineLine(report)}`);
  out.push(`packages: ${packagesLine(report)}`);
  const table = sweepTable(report);
  if (table !== null) out.push('', formatTable(table));
  const best = bestLines(report);
  if (best.length > 0) out.push('', ...best);
  if (report.notes.length > 0) out.push('', 'Notes:', ...report.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}
