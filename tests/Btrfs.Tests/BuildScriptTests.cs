namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Runs alone: the tasks rebuild bin/ and en-US/, which other tests read.</summary>
    [CollectionDefinition(Name, DisableParallelization = true)]
    public sealed class BuildScriptCollection
    {
        public const string Name = "Build script";
    }

    /// <summary>./build.ps1 -Task Build|Test|Help|Package, each in a real pwsh, as a developer runs them.</summary>
    [Collection(BuildScriptCollection.Name)]
    public class BuildScriptTests
    {
        private static RealPwsh.Result Build(string arguments) =>
            RealPwsh.Run($"& (Join-Path $Root 'build.ps1') {arguments} *>&1 | Out-String -Width 200; \"exit=$LASTEXITCODE ok=$?\"", null, ("Root", RepoPaths.Root));

        [SkippableTheory]
        [InlineData("-Task Build -Configuration Debug", "Build succeeded")]
        [InlineData("-Task Help -Configuration Debug", "wrote ")]
        [InlineData("-Task Package", "packaged in")]
        [InlineData("-Task Test -Configuration Debug -NoBuild -Filter FullyQualifiedName~CoreLogicTests", "Passed!")]
        public void EachTaskWorksInARealPwsh(string arguments, string says)
        {
            string help = File.ReadAllText(Path.Combine(RepoPaths.Root, "en-US", "Btrfs.dll-Help.xml"));
            RealPwsh.Result r = Build(arguments);
            Assert.True(r.ExitCode == 0 && r.StdOut.Contains(says, StringComparison.Ordinal), r.StdOut + r.StdErr);
            Assert.EndsWith("ok=True", r.Lines.Last(), StringComparison.Ordinal);
            Assert.Equal(help, File.ReadAllText(Path.Combine(RepoPaths.Root, "en-US", "Btrfs.dll-Help.xml"))); // the committed help is what the task makes
            if (arguments.Contains("Package", StringComparison.Ordinal))
            {
                string version = System.Xml.Linq.XDocument.Load(Path.Combine(RepoPaths.Root, "src", "Btrfs", "Btrfs.csproj")).Descendants("Version").First().Value;
                Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "out", "Btrfs", version, "Btrfs.psd1")));
            }
        }
    }
}
