/**
 * What the benchmark ran on, for the report.
 *
 * @module
 */

/** The machine and runtime. */
export interface MachineInfo {
  /** CPU model from /proc/cpuinfo, or "unknown". */
  readonly cpu: string;
  /** Logical CPUs. */
  readonly cores: number;
  /** Deno, V8 and TypeScript versions. */
  readonly deno: string;
  /** OS and architecture. */
  readonly os: string;
}

/**
 * Reads the machine's description.
 *
 * @returns The CPU model, core count, Deno version and OS.
 */
export async function machineInfo(): Promise<MachineInfo> {
  let cpu = "unknown";
  try {
    const text = await Deno.readTextFile("/proc/cpuinfo");
    cpu = text.match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? cpu;
  } catch {
    // Not Linux, or no permission: the model stays unknown.
  }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    deno:
      `deno ${Deno.version.deno} (v8 ${Deno.version.v8}, typescript ${Deno.version.typescript})`,
    os: `${Deno.build.os} ${Deno.build.arch}`,
  };
}
