namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Threading.Tasks;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// Bad input: each gives a non-terminating error with a stable id, a fitting category and the path
    /// as target, never hangs, and the next path is processed.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class ExtentErrorTests(LoopFileSystems fs)
    {
        private static PwshResult RunWithin(TimeSpan limit, string script, params (string, object?)[] vars)
        {
            Task<PwshResult> t = Task.Run(() => Pwsh.Run(script, vars));
            Assert.True(t.Wait(limit), $"'{script}' did not return within {limit.TotalSeconds} s");
            return t.Result;
        }

        private string GoodFile(string dir)
        {
            string good = Path.Combine(dir, "good.img");
            FileBuilder.Chunks(good, 3, 4096, 8192);
            return good;
        }

        [SkippableFact]
        public void EachBadPathGetsItsOwnErrorAndTheNextPathIsProcessed()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "bad");
            string missing = Path.Combine(dir, "missing.img");
            string directory = Directory.CreateDirectory(Path.Combine(dir, "subdir")).FullName;
            string fifo = Path.Combine(dir, "pipe");
            Shell.Run("mkfifo", fifo);
            string dangling = Path.Combine(dir, "dangling.lnk");
            File.CreateSymbolicLink(dangling, Path.Combine(dir, "gone"));
            string loop = Path.Combine(dir, "loop-a");
            File.CreateSymbolicLink(loop, Path.Combine(dir, "loop-b"));
            File.CreateSymbolicLink(Path.Combine(dir, "loop-b"), loop);
            string block = fs.DeviceOf(TestFs.Btrfs);
            string tmpfsFile = Path.Combine(fs.NewDirectory(TestFs.Tmpfs, "nofiemap"), "t.bin");
            FileBuilder.WriteNew(tmpfsFile, FileBuilder.RandomBytes(8192, 1));
            string good = GoodFile(dir);

            string[] paths = { missing, directory, fifo, "/dev/null", block, dangling, loop, tmpfsFile, good };
            PwshResult r = RunWithin(TimeSpan.FromSeconds(60), "Get-BtrfsExtent -LiteralPath $paths", ("paths", paths));

            Expect.Error(r, "GetBtrfsExtentCommand", missing, "PathNotFound", ErrorCategory.ObjectNotFound, "No such file");
            Expect.Error(r, "GetBtrfsExtentCommand", directory, "PathIsDirectory", ErrorCategory.InvalidArgument, "directory");
            Expect.Error(r, "GetBtrfsExtentCommand", fifo, "NotRegularFile", ErrorCategory.InvalidArgument, "FIFO");
            Expect.Error(r, "GetBtrfsExtentCommand", "/dev/null", "NotRegularFile", ErrorCategory.InvalidArgument, "character device");
            Expect.Error(r, "GetBtrfsExtentCommand", block, "NotRegularFile", ErrorCategory.InvalidArgument, "block device");
            Expect.Error(r, "GetBtrfsExtentCommand", dangling, "DanglingSymbolicLink", ErrorCategory.ObjectNotFound, "symbolic link");
            Expect.Error(r, "GetBtrfsExtentCommand", loop, "SymbolicLinkLoop", ErrorCategory.InvalidArgument, "symbolic links");
            Expect.Error(r, "GetBtrfsExtentCommand", tmpfsFile, "OperationNotSupported", ErrorCategory.NotImplemented, "tmpfs", "FIEMAP");
            Assert.Equal(8, r.Errors.Count);

            // The good file after all of them still comes out, whole.
            Assert.Equal(3, r.Objects<FileExtent>().Count(x => x.Path == good));
            Assert.Equal(3, r.Output.Count);
        }

        [SkippableFact]
        public void ATreeOnAFilesystemWithoutFiemapIsOneErrorNotOnePerFile()
        {
            // The filesystem's refusal holds for every file: said once, and the tree is not walked further (before: one
            // error per file on tmpfs, as about_Btrfs promised otherwise; a hostile test).
            string dir = fs.NewDirectory(TestFs.Tmpfs, "nofiemap-tree");
            for (int i = 0; i < 5; i++)
            {
                FileBuilder.WriteNew(Path.Combine(dir, $"f{i}.bin"), FileBuilder.RandomBytes(4096, i + 1));
            }

            foreach (string cmdlet in new[] { "Get-BtrfsExtent", "Measure-Fragmentation" })
            {
                PwshResult r = Pwsh.Run(cmdlet + " -LiteralPath $d -Recurse", ("d", dir));
                Assert.True(r.ErrorIds.SequenceEqual(new[] { "OperationNotSupported" }), cmdlet + ": " + string.Join(" / ", r.ErrorIds));
                Assert.Contains("they are not walked", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            }
        }

        [SkippableFact]
        public void AFifoWithNoWriterReturnsAtOnce()
        {
            string fifo = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "fifo"), "lonely.fifo");
            Shell.Run("mkfifo", fifo);
            PwshResult r = RunWithin(TimeSpan.FromSeconds(60), "Get-BtrfsExtent -Path $p", ("p", fifo)); // a hang is forever: a minute is room for a loaded machine
            Assert.Equal(new[] { "NotRegularFile" }, r.ErrorIds);
        }

        [SkippableFact]
        public void ALiveSymlinkIsFollowed()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "link");
            string good = GoodFile(dir);
            string link = Path.Combine(dir, "alias.img");
            File.CreateSymbolicLink(link, good);

            PwshResult viaLink = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p", ("p", link));
            PwshResult direct = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p", ("p", good));

            Assert.Empty(viaLink.Errors);
            Assert.Equal(
                direct.Objects<FileExtent>().Select(x => (x.LogicalOffset, x.PhysicalOffset, x.Length)),
                viaLink.Objects<FileExtent>().Select(x => (x.LogicalOffset, x.PhysicalOffset, x.Length)));
            Assert.All(viaLink.Objects<FileExtent>(), x => Assert.Equal(link, x.Path));
        }

        [SkippableFact]
        public void AnUnreadableFileIsAccessDeniedForANonRootUser()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "perm");
            string secret = Path.Combine(dir, "secret.img");
            FileBuilder.Chunks(secret, 2, 4096, 8192);
            File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            string open = GoodFile(dir);
            File.SetUnixFileMode(open, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

            PwshResult r;
            using (FsUid.Become(FsUid.Nobody))
            {
                r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $a, $b", ("a", secret), ("b", open));
            }

            Assert.True(r.Errors.Count > 0 && r.Errors[0].FullyQualifiedErrorId.StartsWith("AccessDenied"), string.Join(" | ", r.Errors.Select(x => x.Exception.Message)));
            Expect.Error(r, "GetBtrfsExtentCommand", secret, "AccessDenied", ErrorCategory.PermissionDenied, "Permission denied");
            Assert.Single(r.Errors);
            Assert.Equal(3, r.Output.Count); // the readable file after it

            // As root the same file maps fine: the error came from the dropped privileges.
            Assert.Empty(Pwsh.Run("Get-BtrfsExtent -LiteralPath $a", ("a", secret)).Errors);
        }

        [SkippableFact]
        public void AnEmptyFileYieldsNothingAndNoError()
        {
            string empty = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "empty"), "empty.img");
            FileBuilder.WriteNew(empty, Array.Empty<byte>());
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p; Get-BtrfsExtent -LiteralPath $p -IncludeHole", ("p", empty));
            Assert.Empty(r.Errors);
            Assert.Empty(r.Output);
        }

        [Fact]
        public void APathOfAnotherProviderIsRefused()
        {
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -Path Env:PATH");
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("NotFileSystemPath,Btrfs.Commands.GetBtrfsExtentCommand", e.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
            Assert.Equal("Env:PATH", e.TargetObject);
        }

        [Fact]
        public void AnUnknownDriveIsAnErrorAndTheNextPathStillRuns()
        {
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -Path 'NoSuchDrive:/x.img', '/dev/null'");
            Assert.Equal(2, r.Errors.Count);
            ErrorRecord drive = r.Errors[0];
            Assert.Equal(ErrorCategory.ObjectNotFound, drive.CategoryInfo.Category);
            Assert.Equal("NoSuchDrive:/x.img", drive.TargetObject);
            Assert.Equal("PathNotFound,Btrfs.Commands.GetBtrfsExtentCommand", drive.FullyQualifiedErrorId);
            Assert.Contains("NoSuchDrive", drive.Exception.Message);
            Assert.Equal("NotRegularFile", r.ErrorIds[1]);
        }

        [Fact]
        public void AWildcardMatchingNothingIsAnError()
        {
            string pattern = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"), "*.img");
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -Path $p", ("p", pattern));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("PathNotFound,Btrfs.Commands.GetBtrfsExtentCommand", e.FullyQualifiedErrorId);
            Assert.Equal(pattern, e.TargetObject);
        }

        [SkippableFact]
        public void APatternThatIsNotAValidWildcardIsThatInputsErrorAndTheNextGoesOn()
        {
            // Before: WildcardPatternException ended the command (RuntimeException, NotSpecified) and the next path was never
            // processed, whatever -ErrorAction said (a hostile test).
            string dir = fs.NewDirectory(TestFs.Btrfs, "badpattern");
            string good = Path.Combine(dir, "a1.txt");
            FileBuilder.WriteNew(good, FileBuilder.RandomBytes(8192, 3));
            string bad = Path.Combine(dir, "[x");
            FileBuilder.WriteNew(bad, FileBuilder.RandomBytes(4096, 4)); // PowerShell compiles the pattern when it has names to match
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -Path $b, $g -ErrorAction SilentlyContinue -ErrorVariable e; $e.Count", ("b", bad), ("g", good));
            Assert.Contains(r.Output, o => o.BaseObject is FileExtent x && x.Path == good); // the next path was mapped
            Assert.Equal(1, (int)r.Output[^1].BaseObject);
            PwshResult shown = Pwsh.Run("Get-BtrfsExtent -Path $b, $g | Out-Null", ("b", bad), ("g", good));
            ErrorRecord e = Assert.Single(shown.Errors);
            Assert.Equal("InvalidWildcardPattern,Btrfs.Commands.GetBtrfsExtentCommand", e.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
            Assert.Equal(bad, e.TargetObject);
            Assert.Contains("-LiteralPath", e.Exception.Message, StringComparison.Ordinal);
        }

        [Fact]
        public void ABadRangeIsRefusedBeforeAnyFileIsTouched()
        {
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath /dev/null -Length 0");
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.StartsWith("ParameterArgumentValidationError", e.FullyQualifiedErrorId);
        }
    }
}
