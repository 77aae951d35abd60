namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// The package target lays out Btrfs/&lt;version&gt;/ with exactly the module's files, and a fresh
    /// PowerShell process imports it from there: every cmdlet resolves, its help and about_Btrfs load,
    /// and the assembly is the package's.
    /// </summary>
    public class PackageTests
    {
        [Fact]
        public void ThePackageHasExactlyTheModuleFilesAndImportsFromWhereItIs()
        {
            string here = AppContext.BaseDirectory.TrimEnd('/');
            string configuration = Path.GetFileName(Path.GetDirectoryName(here)!); // the one this run was built with: nothing is rebuilt
            string root = Directory.CreateTempSubdirectory("btrfs-package-").FullName;
            try
            {
                Shell.Run("dotnet", "build", Path.Combine(RepoPaths.Root, "src", "Btrfs", "Btrfs.csproj"), "-c", configuration, "-t:Package", $"-p:PackageRoot={root}/", "--nologo", "-v", "q");
                string version = ManifestTests.Manifest()["ModuleVersion"]!.ToString()!;
                string package = Path.Combine(root, "Btrfs", version);
                string[] natives = { "linux-arm64", "linux-musl-arm64", "linux-musl-x64", "linux-x64" };
                Assert.Equal(
                    new[]
                    {
                        "Btrfs.Format.ps1xml", "Btrfs.Types.ps1xml", "Btrfs.psd1", "LICENSE", "bin/Btrfs.dll", "bin/Microsoft.Data.Sqlite.dll", "bin/SQLitePCLRaw.batteries_v2.dll",
                        "bin/SQLitePCLRaw.core.dll", "bin/SQLitePCLRaw.provider.e_sqlite3.dll",
                    }
                    .Concat(natives.Select(rid => $"bin/runtimes/{rid}/native/libe_sqlite3.so"))
                    .Concat(new[] { "bin/System.IO.Hashing.dll", "en-US/Btrfs.dll-Help.xml", "en-US/about_Btrfs.help.txt" })
                    .OrderBy(f => f, StringComparer.Ordinal),
                    Directory.GetFiles(package, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(package, f)).OrderBy(f => f, StringComparer.Ordinal));

                // Each native SQLite is built for the machine its folder names (ELF e_machine: 62 x86-64, 183 AArch64).
                foreach (string rid in natives)
                {
                    byte[] elf = File.ReadAllBytes(Path.Combine(package, "bin", "runtimes", rid, "native", "libe_sqlite3.so"));
                    Assert.Equal(rid.EndsWith("arm64", StringComparison.Ordinal) ? 183 : 62, BitConverter.ToUInt16(elf, 18));
                }
                Assert.Equal(File.ReadAllBytes(Path.Combine(RepoPaths.Root, "Btrfs.psd1")), File.ReadAllBytes(Path.Combine(package, "Btrfs.psd1")));

                string host = Path.Combine(RepoPaths.Root, "tests", "Btrfs.Tests.Host", "bin", configuration, Path.GetFileName(here), "Btrfs.Tests.Host.dll");
                string[] lines = Shell.Run("dotnet", host, Path.Combine(package, "Btrfs.psd1")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal("module " + package, lines[0]);
                Assert.Equal("assembly " + Path.Combine(package, "bin", "Btrfs.dll"), lines[1]);
                string[] cmdlets = lines.Skip(2).Where(l => l.Contains('|', StringComparison.Ordinal)).ToArray();
                Assert.Equal(ManifestTests.ExportedCmdletNames().OrderBy(n => n, StringComparer.Ordinal), cmdlets.Select(l => l.Split('|')[0]).OrderBy(n => n, StringComparer.Ordinal));
                Assert.All(cmdlets, l => Assert.True(l.Split('|')[1].Length > 30 && !l.Split('|')[1].StartsWith(l.Split('|')[0], StringComparison.Ordinal), "no help: " + l));
                Assert.Equal("about TOPIC", lines[^1].Trim());
            }
            finally
            {
                Directory.Delete(root, recursive: true);
            }
        }

        [SkippableFact]
        public void ThePackagePublishesToARepositoryAndInstallsAndImportsByName()
        {
            // As a gallery user gets it: Test-ModuleManifest, Publish-PSResource to a repository (a local
            // folder), Install-PSResource, then Import-Module Btrfs by name in a fresh pwsh.
            string here = AppContext.BaseDirectory.TrimEnd('/');
            string configuration = Path.GetFileName(Path.GetDirectoryName(here)!);
            string root = Directory.CreateTempSubdirectory("btrfs-gallery-").FullName;
            try
            {
                string packages = Path.Combine(root, "out");
                Shell.Run("dotnet", "build", Path.Combine(RepoPaths.Root, "src", "Btrfs", "Btrfs.csproj"), "-c", configuration, "-t:Package", $"-p:PackageRoot={packages}/", "--nologo", "-v", "q");
                string version = ManifestTests.Manifest()["ModuleVersion"]!.ToString()!;
                string package = Path.Combine(packages, "Btrfs", version);
                string repo = Directory.CreateDirectory(Path.Combine(root, "repo")).FullName;
                string home = Directory.CreateDirectory(Path.Combine(root, "home")).FullName;
                RealPwsh.Result published = RealPwsh.Run(
                    """
                    $m = Test-ModuleManifest -Path (Join-Path $Package 'Btrfs.psd1') -ErrorAction Stop
                    '{0}|{1}|{2}' -f $m.Name, $m.Version, $m.LicenseUri
                    Register-PSResourceRepository -Name btrfs-test -Uri $Repo -Trusted
                    Publish-PSResource -Path $Package -Repository btrfs-test -ErrorAction Stop
                    Install-PSResource -Name Btrfs -Repository btrfs-test -Scope CurrentUser -TrustRepository -ErrorAction Stop
                    'installed'
                    """,
                    null,
                    home,
                    ("Package", package),
                    ("Repo", repo));
                Assert.True(published.ExitCode == 0 && published.StdErr.Length == 0, published.StdOut + published.StdErr);
                Assert.Equal(new[] { $"Btrfs|{version}|https://github.com/btrfs-pwsh/Btrfs/blob/main/LICENSE", "installed" }, published.Lines.TakeLast(2).ToArray());
                Assert.True(File.Exists(Path.Combine(repo, $"Btrfs.{version}.nupkg")));

                // A fresh pwsh that imports by name: no manifest path, the installed copy; Find-BtrfsDuplicate
                // hashes with the module's own dependency (System.IO.Hashing) and keeps them with another
                // (Microsoft.Data.Sqlite and its native SQLite for this machine), which must load from there.
                string same = Directory.CreateDirectory(Path.Combine(root, "same")).FullName;
                byte[] block = new byte[256 * 1024];
                new Random(3).NextBytes(block);
                File.WriteAllBytes(Path.Combine(same, "a"), block);
                File.WriteAllBytes(Path.Combine(same, "b"), block);
                string script = "Remove-Module Btrfs -ErrorAction SilentlyContinue; Import-Module Btrfs -ErrorAction Stop; (Get-Module Btrfs).ModuleBase; (Get-Command -Module Btrfs).Count; (Get-Help Test-NoCow).Synopsis; "
                    + $"(Find-BtrfsDuplicate -LiteralPath '{same}' -Recurse -HashFile '{root}/h.db' -ErrorAction Stop).Length; [AppDomain]::CurrentDomain.GetAssemblies().Where({{ $_.GetName().Name -eq 'System.IO.Hashing' }}).Location; "
                    + "[AppDomain]::CurrentDomain.GetAssemblies().Where({ $_.GetName().Name -eq 'Microsoft.Data.Sqlite' }).Location; (Get-Content /proc/$PID/maps | Select-String 'libe_sqlite3' | Select-Object -First 1).Line.Split(' ')[-1]";
                var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                foreach (string a in new[] { Path.Combine(RealPwsh.ToolDirectory!, "pwsh.dll"), "-NoProfile", "-NonInteractive", "-Command", script })
                {
                    psi.ArgumentList.Add(a);
                }

                psi.Environment["HOME"] = home;
                using var p = System.Diagnostics.Process.Start(psi)!;
                string[] lines = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                p.WaitForExit();
                Assert.Equal(Path.Combine(home, ".local", "share", "powershell", "Modules", "Btrfs", version), lines[0]);
                Assert.Equal(ManifestTests.ExportedCmdletNames().Count().ToString(System.Globalization.CultureInfo.InvariantCulture), lines[1]);
                Assert.True(lines[2].Length > 30, lines[2]);
                Assert.Equal((256 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), lines[3]);
                string bin = Path.Combine(home, ".local", "share", "powershell", "Modules", "Btrfs", version, "bin");
                Assert.Equal(Path.Combine(bin, "System.IO.Hashing.dll"), lines[4]);
                Assert.Equal(Path.Combine(bin, "Microsoft.Data.Sqlite.dll"), lines[5]);
                string rid = (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "linux-arm64" : "linux-x64");
                Assert.Equal(Path.Combine(bin, "runtimes", rid, "native", "libe_sqlite3.so"), lines[6]);
                Assert.Equal("2", Shell.Run("sqlite3", Path.Combine(root, "h.db"), "SELECT count(*) FROM files").Trim()); // a and b
            }
            finally
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }
}
