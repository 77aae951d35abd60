namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// A copy of the checkout (the files git tracks, and the new ones it does not ignore, as they are
    /// now) for the build script to work in: its tasks rebuild bin/ and en-US/, which the other tests are
    /// reading in the live checkout.
    /// </summary>
    public sealed class CheckoutCopy : IDisposable
    {
        public CheckoutCopy()
        {
            Root = Directory.CreateTempSubdirectory("btrfs-build-").FullName;
            string files = Shell.Run("git", "-C", RepoPaths.Root, "ls-files", "-co", "--exclude-standard");
            foreach (string file in files.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                string from = Path.Combine(RepoPaths.Root, file);
                if (File.Exists(from))
                {
                    string to = Path.Combine(Root, file);
                    Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                    File.Copy(from, to);
                }
            }
        }

        public string Root { get; }

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    /// <summary>./build.ps1 -Task Build|Test|Help|Package, each in a real pwsh, as a developer runs them (in a copy of the checkout).</summary>
    public class BuildScriptTests(CheckoutCopy copy) : IClassFixture<CheckoutCopy>
    {
        private RealPwsh.Result Build(string arguments) =>
            RealPwsh.Run($"& (Join-Path $Root 'build.ps1') {arguments} *>&1 | Out-String -Width 200; \"exit=$LASTEXITCODE ok=$?\"", null, ("Root", copy.Root));

        [SkippableTheory]
        [InlineData("-Task Build -Configuration Debug", "Build succeeded")]
        [InlineData("-Task Help -Configuration Debug", "wrote ")]
        [InlineData("-Task Package", "packaged in")]
        [InlineData("-Task Test -Configuration Debug -Filter FullyQualifiedName~CoreLogicTests", "Passed!")]
        public void EachTaskWorksInARealPwsh(string arguments, string says)
        {
            string help = File.ReadAllText(Path.Combine(copy.Root, "en-US", "Btrfs.dll-Help.xml"));
            RealPwsh.Result r = Build(arguments);
            Assert.True(r.ExitCode == 0 && r.StdOut.Contains(says, StringComparison.Ordinal), r.StdOut + r.StdErr);
            Assert.EndsWith("ok=True", r.Lines.Last(), StringComparison.Ordinal);
            Assert.Equal(help, File.ReadAllText(Path.Combine(copy.Root, "en-US", "Btrfs.dll-Help.xml"))); // the committed help is what the task makes
            if (arguments.Contains("Package", StringComparison.Ordinal))
            {
                string version = System.Xml.Linq.XDocument.Load(Path.Combine(copy.Root, "src", "Btrfs", "Btrfs.csproj")).Descendants("Version").First().Value;
                Assert.True(File.Exists(Path.Combine(copy.Root, "out", "Btrfs", version, "Btrfs.psd1")));
            }
        }
    }
}
