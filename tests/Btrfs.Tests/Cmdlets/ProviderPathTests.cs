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

        /// <summary>
        /// Before: a path with a NUL reached the file named by what comes before it (the kernel reads a path up to its
        /// first NUL): Invoke-BtrfsDedupe deduplicated 'k' for "k`0zzz", given or in a piped group. Found by a hostile test.
        /// </summary>
        [SkippableFact]
        public void APathWithANulIsAnErrorAndNothingIsDone()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "nul-path");
            string k = Path.Combine(dir, "k"), d = Path.Combine(dir, "d");
            byte[] data = FileBuilder.RandomBytes(1 << 20, 8);
            FileBuilder.WriteNew(k, data);
            FileBuilder.WriteNew(d, data);
            Shell.Run("sync");
            string layout = string.Join(" ", Filefrag.Extents(d).Select(e => e.Physical));
            foreach (string command in new[]
            {
                "Invoke-BtrfsDedupe -LiteralPath $k -Destination \"$d`0zzz\" -Confirm:$false",
                "Invoke-BtrfsDedupe -LiteralPath \"$k`0zzz\" -Destination $d -Confirm:$false",
                "$g = @(Find-BtrfsDuplicate -LiteralPath $k, $d)[0]; $g.Ranges[1].Path = \"$d`0zzz\"; $g | Invoke-BtrfsDedupe -Confirm:$false",
                "Get-BtrfsExtent -LiteralPath \"$k`0zzz\"",
                "Test-NoCow -Path \"$k`0zzz\"",
            })
            {
                PwshResult r = Pwsh.Run(command + "; 'next'", ("k", k), ("d", d));
                Assert.True(r.ErrorIds.SequenceEqual(new[] { "InvalidArgument" }), command + ": " + string.Join(" / ", r.Errors));
                Assert.Contains("NUL character", r.Errors[0].Exception.Message, System.StringComparison.Ordinal);
                Assert.Equal("next", r.Output[^1].BaseObject);
                Assert.DoesNotContain(r.Output, o => o.BaseObject is Btrfs.Core.FileExtent or bool);
            }

            Assert.Equal(layout, string.Join(" ", Filefrag.Extents(d).Select(e => e.Physical))); // nothing deduplicated
            Assert.DoesNotContain(Filefrag.Extents(d), e => e.Flags.Contains("shared"));
        }

        /// <summary>
        /// Before: 'x.txt/' and 'x.txt/.', which the kernel refuses (ENOTDIR, as ls does), reached x.txt: PowerShell's
        /// resolution drops the ending. Found by a hostile test. A pattern ending in '/' matches directories only.
        /// </summary>
        [SkippableFact]
        public void APathEndingInASlashAfterAFileIsNotADirectoryError()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "slash-path");
            string x = Path.Combine(dir, "x.txt");
            FileBuilder.WriteNew(x, FileBuilder.RandomBytes(20000, 9));
            Directory.CreateDirectory(Path.Combine(dir, "xdir"));
            foreach (string given in new[] { x + "/", x + "/.", x + "//" })
            {
                foreach (string command in new[] { "Get-BtrfsExtent -LiteralPath $p", "Measure-Fragmentation -Path $p", "Set-NoCow -LiteralPath $p -WhatIf", "Invoke-BtrfsDedupe -LiteralPath $p -Destination $p -WhatIf" })
                {
                    PwshResult r = Pwsh.Run(command + "; 'next'", ("p", given));
                    Assert.True(r.ErrorIds.SequenceEqual(new[] { "NotADirectory" }), command + " " + given + ": " + string.Join(" / ", r.Errors));
                    Assert.Equal(given, r.Errors[0].TargetObject);
                    Assert.Equal(new object[] { "next" }, r.Output.Select(o => o.BaseObject));
                }
            }

            // A directory so named is one; a pattern ending in '/' takes only directories (x.txt is not matched, nor an error).
            Assert.Equal(new object[] { false }, Pwsh.Run("Test-NoCow -LiteralPath $p", ("p", Path.Combine(dir, "xdir") + "/")).Output.Select(o => o.BaseObject));
            PwshResult pattern = Pwsh.Run("Test-NoCow -Path (Join-Path $d 'x*/')", ("d", dir));
            Assert.Empty(pattern.Errors);
            Assert.Single(pattern.Output);
        }
    }
}
