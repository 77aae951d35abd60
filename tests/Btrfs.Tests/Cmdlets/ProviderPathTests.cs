namespace Btrfs.Tests
{
    using System.IO;
    using System.Linq;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// A path parameter that may name a file not there yet (-Path of New-BtrfsSwapfile, -Destination, -StatePath,
    /// -HashFile) refuses another provider's path: 'Env:/x' was resolved to 'x' and made a file under the process's
    /// working directory, and New-BtrfsSwapfile -Activate then switched on '/x', another file. Found by a hostile review.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class ProviderPathTests(LoopFileSystems fs)
    {
        [SkippableTheory]
        [InlineData("New-BtrfsSwapfile -Path 'Env:/x' -Size 1MB -Confirm:$false")]
        [InlineData("New-BtrfsSwapfile -Path 'Variable:x' -Size 1MB -Activate -Confirm:$false")]
        [InlineData("New-BtrfsReflink -LiteralPath $src -Destination 'Env:/x' -Confirm:$false")]
        [InlineData("Invoke-BtrfsDefrag -LiteralPath $src -Recurse -StatePath 'Variable:/x' -Confirm:$false")]
        [InlineData("Invoke-BtrfsDefrag -LiteralPath $src -Recurse -StatePath 'Env:/x' -WhatIf")]
        [InlineData("Find-BtrfsDuplicate -LiteralPath $src -HashFile 'Env:/x'")]
        public void AnotherProvidersPathIsRefusedAndNothingIsMadeInTheWorkingDirectory(string command)
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "provider-path");
            string cwd = Directory.CreateDirectory(Path.Combine(dir, "cwd")).FullName;
            string src = Path.Combine(dir, "src.img");
            FileBuilder.WriteNew(src, FileBuilder.RandomBytes(256 << 10, 7));
            string swapsBefore = File.ReadAllText("/proc/swaps");
            PwshResult r = Pwsh.Run($"$old = [Environment]::CurrentDirectory; [Environment]::CurrentDirectory = $cwd; try {{ {command} }} finally {{ [Environment]::CurrentDirectory = $old }}", ("cwd", cwd), ("src", src));
            Assert.Equal("NotFileSystemPath", Assert.Single(r.ErrorIds));
            Assert.Empty(Directory.EnumerateFileSystemEntries(cwd));
            Assert.False(File.Exists("/x"));
            Assert.Equal(swapsBefore, File.ReadAllText("/proc/swaps"));
            Assert.Equal(new[] { "cwd", "src.img" }, Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order().ToArray());
        }

        [Fact]
        public void ANulInTheSwapfilePathIsAnErrorRecordNotACrash()
        {
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile -Path \"/tmp/a`0b\" -Size 1MB -Confirm:$false; 'next'");
            Assert.Equal("InvalidArgument", Assert.Single(r.ErrorIds));
            Assert.Equal("next", Assert.Single(r.Output).BaseObject);
        }
    }
}
