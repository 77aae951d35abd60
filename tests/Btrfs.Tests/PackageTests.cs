namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
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
                Assert.Equal(
                    new[] { "Btrfs.Format.ps1xml", "Btrfs.Types.ps1xml", "Btrfs.psd1", "bin/Btrfs.dll", "en-US/Btrfs.dll-Help.xml", "en-US/about_Btrfs.help.txt" },
                    Directory.GetFiles(package, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(package, f)).OrderBy(f => f, StringComparer.Ordinal));
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
    }
}
