namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Collections.Generic;
    using System.Diagnostics;
    using System.IO;
    using System.Linq;
    using System.Text;
    using Btrfs.Kernel;

    /// <summary>
    /// The real pwsh (the dotnet tool `PowerShell` 7.6.9, installed by .ci/run) in a process of its own,
    /// optionally as another user: setpriv drops the real, effective and saved ids, the groups and every
    /// capability, so the kernel treats the process exactly as that user's (other users' /proc entries
    /// unreadable, no CAP_LEASE). The tool's files live under root's 0700 home, so for another user
    /// they are copied once to a readable place under the fixture's base directory.
    /// </summary>
    internal static class RealPwsh
    {
        private static readonly object Gate = new();
        private static string? sharedCopy;

        internal sealed record Result(int ExitCode, string StdOut, string StdErr)
        {
            /// <summary>The output lines, trimmed, empty ones dropped.</summary>
            internal string[] Lines => StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

            /// <summary>What follows "@@" on each line that has it (a prompt's text can precede it: pwsh ends no line after a question it could not ask).</summary>
            internal string[] Marked => Lines.Where(l => l.Contains("@@", StringComparison.Ordinal)).Select(l => l[(l.IndexOf("@@", StringComparison.Ordinal) + 2)..]).ToArray();
        }

        /// <summary>The directory holding pwsh.dll of the installed tool, or null when it is not installed.</summary>
        internal static string? ToolDirectory
        {
            get
            {
                string home = Environment.GetEnvironmentVariable("HOME") ?? "/root";
                string store = Path.Combine(home, ".dotnet", "tools", ".store", "powershell");
                if (!Directory.Exists(store))
                {
                    return null;
                }

                return Directory.GetFiles(store, "pwsh.dll", SearchOption.AllDirectories)
                    .Select(Path.GetDirectoryName)
                    .Where(d => d!.Contains("/7.6.", StringComparison.Ordinal) && d.EndsWith("/unix", StringComparison.Ordinal))
                    .OrderBy(d => d, StringComparer.Ordinal)
                    .LastOrDefault();
            }
        }

        /// <summary>
        /// Runs <paramref name="script"/> with the module imported from this checkout's manifest
        /// (`$ModuleManifest` also holds its path). Variables are passed as environment variables
        /// BTRFS_TEST_&lt;NAME&gt; and set as $&lt;Name&gt; before the script runs.
        /// </summary>
        internal static Result Run(string script, uint? asUid = null, params (string Name, string Value)[] variables) => Run(script, asUid, null, variables);

        /// <summary>As <see cref="Run(string, uint?, (string, string)[])"/>, with <paramref name="home"/> as $HOME (a user's module folder, profile and settings).</summary>
        internal static Result Run(string script, uint? asUid, string? home, params (string Name, string Value)[] variables) => Run(script, asUid, home, nonInteractive: true, variables);

        /// <summary>
        /// As <see cref="Run(string, uint?, (string, string)[])"/>, without -NonInteractive: pwsh as cron or a CI
        /// job starts it (pwsh -c, input closed), so a prompt is attempted and finds no input.
        /// </summary>
        internal static Result RunWithClosedInput(string script, params (string Name, string Value)[] variables) => Run(script, null, null, nonInteractive: false, variables);

        /// <summary>As root, under <paramref name="wrapper"/> (a command that runs the rest: setpriv dropping a capability, unshare -r).</summary>
        internal static Result RunWrapped(string script, string[] wrapper, params (string Name, string Value)[] variables) => Run(script, null, null, nonInteractive: true, variables, wrapper);

        private static Result Run(string script, uint? asUid, string? home, bool nonInteractive, (string Name, string Value)[] variables, string[]? wrapper = null)
        {
            string? tool = ToolDirectory;
            Requires.That(tool is not null, "pwsh 7.6 is not installed (dotnet tool install --global PowerShell --version 7.6.9; .ci/run does it)");
            string dir = asUid is null ? tool! : ReadableCopy(tool!);

            var prelude = new StringBuilder();
            prelude.Append("$ErrorActionPreference = 'Continue'\n$ProgressPreference = 'SilentlyContinue'\n");
            prelude.Append("$ModuleManifest = $env:BTRFS_TEST_MODULEMANIFEST\n");
            foreach ((string name, _) in variables)
            {
                prelude.Append('$').Append(name).Append(" = $env:BTRFS_TEST_").Append(name.ToUpperInvariant()).Append('\n');
            }

            prelude.Append("Import-Module $ModuleManifest -ErrorAction Stop\n");
            string encoded = Convert.ToBase64String(Encoding.Unicode.GetBytes(prelude + script));

            var psi = new ProcessStartInfo(wrapper is { Length: > 0 } ? wrapper[0] : asUid is null ? "dotnet" : "setpriv")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
                WorkingDirectory = "/tmp",
            };
            var args = new List<string>();
            if (wrapper is { Length: > 0 })
            {
                args.AddRange(wrapper[1..]);
                args.Add("dotnet");
            }
            else if (asUid is uint uid)
            {
                string id = uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
                args.AddRange(new[] { $"--reuid={id}", $"--regid={id}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--", "dotnet" });
            }

            args.AddRange(nonInteractive
                ? new[] { Path.Combine(dir, "pwsh.dll"), "-NoProfile", "-NonInteractive", "-EncodedCommand", encoded }
                : new[] { Path.Combine(dir, "pwsh.dll"), "-NoProfile", "-EncodedCommand", encoded });
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            // BTRFS_TEST_MODULE runs the tests against another build (e.g. the last release, to show a test fails there).
            psi.Environment["BTRFS_TEST_MODULEMANIFEST"] = Environment.GetEnvironmentVariable("BTRFS_TEST_MODULE") is { Length: > 0 } other ? other : RepoPaths.Manifest;
            psi.Environment["HOME"] = home ?? (asUid is null ? Environment.GetEnvironmentVariable("HOME") : "/tmp");
            psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            psi.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
            psi.Environment["POWERSHELL_UPDATECHECK"] = "Off";
            psi.Environment["TERM"] = "dumb";
            psi.Environment["NO_COLOR"] = "1";
            foreach ((string name, string value) in variables)
            {
                psi.Environment["BTRFS_TEST_" + name.ToUpperInvariant()] = value;
            }

            using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start pwsh");
            p.StandardInput.Close();
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException("pwsh did not finish in 3 minutes: " + script);
            }

            return new Result(p.ExitCode, stdout.Result, stderr.Result);
        }

        /// <summary>The tool's files copied where any user can read them (once per machine and version).</summary>
        private static string ReadableCopy(string tool)
        {
            lock (Gate)
            {
                if (sharedCopy is not null)
                {
                    return sharedCopy;
                }

                string version = tool.Split('/').FirstOrDefault(s => s.StartsWith("7.", StringComparison.Ordinal)) ?? "7";
                string target = Path.Combine(LoopFileSystems.BaseDir, "pwsh-" + version);
                string done = Path.Combine(target, ".complete");
                if (!File.Exists(done))
                {
                    Directory.CreateDirectory(LoopFileSystems.BaseDir);
                    File.SetUnixFileMode(LoopFileSystems.BaseDir, (UnixFileMode)0x1ED);
                    string staging = target + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    Shell.Try("rm", "-rf", staging);
                    Shell.Run("cp", "-r", tool, staging);
                    Shell.Run("chmod", "-R", "a+rX", staging);
                    Shell.Try("rm", "-rf", target);
                    Shell.Run("mv", staging, target);
                    File.WriteAllText(done, version);
                }

                sharedCopy = target;
                return target;
            }
        }
    }
}
