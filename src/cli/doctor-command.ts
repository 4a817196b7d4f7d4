import type { Command } from 'commander';
import { doctorReport, formatDoctor } from './doctor.js';

export function addDoctor(program: Command): void {
  program
    .command('doctor')
    .description('engines, backends, execution providers, versions and optional tools found here')
    .option('--json', 'machine-readable output')
    .action(async (o) => {
      const r = await doctorReport();
      process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : formatDoctor(r) + '\n');
    });
}
