namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Filesystems users meet are named in messages and in the FileSystem property, not given as magic numbers.</summary>
    [Collection(FileSystemCollection.Name)]
    public class FileSystemNameTests(LoopFileSystems fs)
    {
        [SkippableTheory]
        [InlineData("/proc/self/status", "proc")]
        [InlineData("/sys/kernel/mm/transparent_hugepage/enabled", "sysfs")]
        public void PseudoFilesystemsAreNamedInTheError(string path, string name)
        {
            Skip.IfNot(File.Exists(path), path + " does not exist here");
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p; Measure-Fragmentation -LiteralPath $p", ("p", path));
            Assert.Equal(new[] { "OperationNotSupported", "OperationNotSupported" }, r.ErrorIds);
            Assert.All(r.Errors, e => Assert.Contains($"{name} does not support FIEMAP", e.Exception.Message, StringComparison.Ordinal));
            Assert.All(r.Errors, e => Assert.DoesNotContain("magic", e.Exception.Message, StringComparison.Ordinal));
        }

        [Theory]
        [InlineData(0x9fa0L, "Proc", "proc")]
        [InlineData(0x794c7630L, "Overlay", "overlayfs")]
        [InlineData(0x6969L, "Nfs", "NFS")]
        [InlineData(0xFE534D42L, "Smb", "SMB")]
        [InlineData(0x2fc12fc1L, "Zfs", "ZFS")]
        [InlineData(unchecked((long)0xFFFFFFFF9123683EUL), "Btrfs", "btrfs")] // f_type is a signed word
        [InlineData(0x12345678L, "Other", "a filesystem with magic 0x12345678")]
        public void MagicNumbersAreClassifiedAndNamed(long magic, string kindName, string name)
        {
            // Enum names, not enum values, in the attributes: reading those at discovery would need
            // bin/Btrfs.dll before the test assembly's resolver for it is registered.
            FileSystemKind kind = Enum.Parse<FileSystemKind>(kindName);
            FileSystemType t = FileSystemType.FromMagic(magic);
            Assert.Equal(kind, t.Kind);
            Assert.Equal(name, t.DisplayName);
        }

        [SkippableFact]
        public void AFileOnOverlayfsReportsOverlayAsItsFilesystem()
        {
            string dir = fs.NewDirectory(TestFs.Ext4, "overlay");
            string lower = Directory.CreateDirectory(Path.Combine(dir, "lower")).FullName;
            string upper = Directory.CreateDirectory(Path.Combine(dir, "upper")).FullName;
            string work = Directory.CreateDirectory(Path.Combine(dir, "work")).FullName;
            string merged = Directory.CreateDirectory(Path.Combine(fs.Root, "overlay-" + Guid.NewGuid().ToString("N")[..8])).FullName;
            FileBuilder.Chunks(Path.Combine(lower, "image.img"), 4, 64 << 10, 128 << 10);
            Shell.Run("mount", "-t", "overlay", "overlay", "-o", $"lowerdir={lower},upperdir={upper},workdir={work}", merged);
            try
            {
                PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $p", ("p", Path.Combine(merged, "image.img")));
                Assert.Empty(r.Errors);
                FragmentationReport report = Assert.Single(r.Objects<FragmentationReport>());
                Assert.Equal(FileSystemKind.Overlay, report.FileSystem);
                Assert.Equal(4, report.ExtentCount); // FIEMAP answers from the file underneath
            }
            finally
            {
                Shell.Run("umount", merged);
                Directory.Delete(merged);
            }
        }
    }
}
