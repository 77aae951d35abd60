namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Diagnostics;
    using System.IO;

    /// <summary>Runs external tools (mkfs, mount, filefrag, cp) as independent sources of truth.</summary>
    internal static class Shell
    {
        internal sealed record Result(int ExitCode, string StdOut, string StdErr);

        internal static Result Try(string file, params string[] args)
        {
            var psi = new ProcessStartInfo(file)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            psi.Environment["LC_ALL"] = "C";
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("Cannot start " + file);
            p.StandardInput.Close();
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in 2 minutes");
            }

            return new Result(p.ExitCode, stdout.Result, stderr.Result);
        }

        internal static string Run(string file, params string[] args)
        {
            Result r = Try(file, args);
            if (r.ExitCode != 0)
            {
                throw new InvalidOperationException($"'{file} {string.Join(' ', args)}' exited {r.ExitCode}: {r.StdErr.Trim()} {r.StdOut.Trim()}");
            }

            return r.StdOut;
        }

        internal static bool Exists(string tool)
        {
            foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':'))
            {
                if (dir.Length > 0 && File.Exists(Path.Combine(dir, tool)))
                {
                    return true;
                }
            }

            return File.Exists(Path.Combine("/usr/sbin", tool)) || File.Exists(Path.Combine("/sbin", tool));
        }
    }
}
