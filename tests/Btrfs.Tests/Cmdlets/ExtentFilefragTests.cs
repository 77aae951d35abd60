namespace Btrfs.Tests
{
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Every extent Get-BtrfsExtent reports equals, field by field, what filefrag -v -b1 reports for the same file.</summary>
    [Collection(FileSystemCollection.Name)]
    public class ExtentFilefragTests(LoopFileSystems fs)
    {
        // filefrag flag names for FIEMAP bits; "eof" is filefrag's own (extent reaches EOF), not a FIEMAP bit.
        private static readonly Dictionary<string, ExtentFlags> FilefragFlags = new()
        {
            ["last"] = ExtentFlags.Last,
            ["unknown_loc"] = ExtentFlags.Unknown,
            ["delalloc"] = ExtentFlags.Delalloc,
            ["encoded"] = ExtentFlags.Encoded,
            ["encrypted"] = ExtentFlags.DataEncrypted,
            ["not_aligned"] = ExtentFlags.NotAligned,
            ["inline"] = ExtentFlags.DataInline,
            ["tail_packed"] = ExtentFlags.DataTail,
            ["unwritten"] = ExtentFlags.Unwritten,
            ["merged"] = ExtentFlags.Merged,
            ["shared"] = ExtentFlags.Shared,
        };

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.BtrfsZstd)]
        [InlineData(TestFs.Xfs)]
        [InlineData(TestFs.Ext4)]
        public void EveryExtentMatchesFilefrag(TestFs which)
        {
            Requires.That(Shell.Exists("filefrag"), "filefrag (e2fsprogs) is not installed");
            string dir = fs.NewDirectory(which, "filefrag");
            string path = Path.Combine(dir, "mixed.img");

            // 40 chunks of 64 KiB separated by 64 KiB holes, then 1 MiB preallocated at the end,
            // and (where reflinks exist) the first half cloned into a copy: data, holes, unwritten and shared extents.
            FileBuilder.Chunks(path, count: 40, chunk: 64 * 1024, stride: 128 * 1024);
            Shell.Run("fallocate", "-o", (40L * 128 * 1024).ToString(), "-l", (1024L * 1024).ToString(), path);
            if (which is TestFs.Btrfs or TestFs.Xfs)
            {
                Shell.Run("cp", "--reflink=always", path, path + ".copy");
            }

            Shell.Run("sync");
            List<FilefragExtent> truth = Filefrag.Extents(path);
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p", ("p", path));

            Assert.Empty(r.Errors);
            List<FileExtent> mine = r.Objects<FileExtent>();
            Assert.True(truth.Count >= 41, $"the layout should have at least 41 extents, filefrag saw {truth.Count}");
            Assert.Equal(truth.Count, mine.Count);
            for (int i = 0; i < truth.Count; i++)
            {
                FilefragExtent t = truth[i];
                FileExtent m = mine[i];
                Assert.Equal((t.Index, t.Logical, t.Physical, t.Length), ((int)m.Index, m.LogicalOffset, m.PhysicalOffset, m.Length));
                ExtentFlags expected = t.Flags.Where(FilefragFlags.ContainsKey).Aggregate(ExtentFlags.None, (a, f) => a | FilefragFlags[f]);
                Assert.Equal(expected, m.Flags);
                Assert.Equal(path, m.Path);
                Assert.False(m.IsHole);
            }

            FileSystemKind kind = which switch
            {
                TestFs.Xfs => FileSystemKind.Xfs,
                TestFs.Ext4 => FileSystemKind.Ext4,
                _ => FileSystemKind.Btrfs,
            };
            Assert.All(mine, m => Assert.Equal(kind, m.FileSystem));
            Assert.True(mine[^1].IsLast);
            Assert.Contains(mine, m => m.IsUnwritten);
            Assert.Equal(which is TestFs.Btrfs or TestFs.Xfs, mine.Any(m => m.IsShared));
        }
    }
}
