namespace Btrfs.Tests
{
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Text;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Layouts built on purpose, and the flags and offsets Get-BtrfsExtent must report for them.</summary>
    [Collection(FileSystemCollection.Name)]
    public class ExtentLayoutTests(LoopFileSystems fs)
    {
        private static List<FileExtent> Extents(string path, string extra = "")
        {
            PwshResult r = Pwsh.Run($"Get-BtrfsExtent -LiteralPath $p {extra}", ("p", path));
            Assert.Empty(r.Errors);
            return r.Objects<FileExtent>();
        }

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.Xfs)]
        [InlineData(TestFs.Ext4)]
        public void ChunksSeparatedByHolesAreOneExtentEach(TestFs which)
        {
            string path = Path.Combine(fs.NewDirectory(which, "chunks"), "chunks.bin");
            const int n = 7, chunk = 32 * 1024, stride = 96 * 1024;
            FileBuilder.Chunks(path, n, chunk, stride);

            // xfs may leave speculative preallocation between chunks as unwritten extents: compare the data.
            List<FileExtent> e = Extents(path).Where(x => !x.IsUnwritten).ToList();

            Assert.Equal(Enumerable.Range(0, n).Select(i => ((long)i * stride, (long)chunk, (long)i * stride + chunk)), e.Select(x => (x.LogicalOffset, x.Length, x.EndOffset)));
            Assert.All(e, x => Assert.True(x.PhysicalOffset > 0));
            Assert.True(e[^1].IsLast);
            Assert.All(e.Take(n - 1), x => Assert.False(x.IsLast));
            Assert.All(e, x => Assert.False(x.IsShared || x.IsCompressed || x.IsInline || x.IsUnwritten || x.IsDelalloc || x.IsHole));
        }

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.Xfs)]
        public void AReflinkCopyIsSharedOnBothSides(TestFs which)
        {
            string dir = fs.NewDirectory(which, "reflink");
            string a = Path.Combine(dir, "a.img"), b = Path.Combine(dir, "b.img");
            FileBuilder.Chunks(a, 4, 64 * 1024, 128 * 1024);
            string lonely = Path.Combine(dir, "lonely.img");
            FileBuilder.Chunks(lonely, 4, 64 * 1024, 128 * 1024);
            Shell.Run("cp", "--reflink=always", a, b);
            Shell.Run("sync");

            Assert.All(Extents(a), x => Assert.True(x.IsShared));
            Assert.All(Extents(b), x => Assert.True(x.IsShared));
            Assert.All(Extents(lonely), x => Assert.False(x.IsShared));
            Assert.Equal(Extents(a).Select(x => x.PhysicalOffset), Extents(b).Select(x => x.PhysicalOffset));
        }

        [SkippableFact]
        public void DataOnACompressZstdMountIsCompressed()
        {
            string dir = fs.NewDirectory(TestFs.BtrfsZstd, "zstd");
            string text = Path.Combine(dir, "log.txt");
            FileBuilder.WriteNew(text, FileBuilder.Text(1 << 20));
            string random = Path.Combine(dir, "random.bin");
            FileBuilder.WriteNew(random, FileBuilder.RandomBytes(1 << 20, 7));

            List<FileExtent> e = Extents(text);
            Assert.Equal(8, e.Count); // 1 MiB compressed in 128 KiB units
            Assert.All(e, x => Assert.True(x.IsCompressed));
            Assert.All(e, x => Assert.True(x.Length <= 128 * 1024));
            Assert.All(Extents(random), x => Assert.False(x.IsCompressed)); // btrfs gives up on incompressible data
        }

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.Xfs)]
        [InlineData(TestFs.Ext4)]
        public void FallocatedSpaceIsUnwritten(TestFs which)
        {
            string path = Path.Combine(fs.NewDirectory(which, "prealloc"), "pre.img");
            Shell.Run("fallocate", "-l", "4M", path);
            FileBuilder.WriteAt(path, 1 << 20, FileBuilder.RandomBytes(64 * 1024, 3));

            List<FileExtent> e = Extents(path);

            Assert.Equal(4L << 20, e.Sum(x => x.Length));
            FileExtent written = Assert.Single(e, x => !x.IsUnwritten);
            Assert.Equal((1L << 20, 64L * 1024), (written.LogicalOffset, written.Length));
            Assert.Equal(2, e.Count(x => x.IsUnwritten));
        }

        [SkippableFact]
        public void ATinyBtrfsFileIsInlineOnceSynced()
        {
            string path = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "inline"), "tiny.conf");
            FileBuilder.WriteNew(path, Encoding.ASCII.GetBytes("key=value\n"), fsync: false);

            // Freshly written, the data is still delayed allocation; -Sync flushes it first.
            FileExtent before = Assert.Single(Extents(path));
            Assert.True(before.IsDelalloc, $"expected delalloc before sync, got {before.Flags}");
            FileExtent after = Assert.Single(Extents(path, "-Sync"));
            Assert.True(after.IsInline, $"expected inline after -Sync, got {after.Flags}");
            Assert.False(after.IsDelalloc);
            Assert.Equal(ExtentFlags.Last | ExtentFlags.NotAligned | ExtentFlags.DataInline, after.Flags);
        }

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.Xfs)]
        [InlineData(TestFs.Ext4)]
        public void HolesOfASparseFileAreAtTheRightOffsets(TestFs which)
        {
            string path = Path.Combine(fs.NewDirectory(which, "sparse"), "sparse.img");
            const long K = 1024;
            FileBuilder.Sparse(path, 1024 * K);
            FileBuilder.WriteAt(path, 256 * K, FileBuilder.RandomBytes(64 * 1024, 1));
            FileBuilder.WriteAt(path, 768 * K, FileBuilder.RandomBytes(64 * 1024, 2));

            List<FileExtent> e = Extents(path, "-IncludeHole");

            Assert.Equal(
                new[] { (0L, 256 * K, true), (256 * K, 64 * K, false), (320 * K, 448 * K, true), (768 * K, 64 * K, false), (832 * K, 192 * K, true) },
                e.Select(x => (x.LogicalOffset, x.Length, x.IsHole)));
            Assert.Equal(Enumerable.Range(0, 5).Select(i => (long)i), e.Select(x => x.Index));
            Assert.All(e.Where(x => x.IsHole), h => Assert.Equal((0L, ExtentFlags.None), (h.PhysicalOffset, h.Flags)));

            // Without -IncludeHole only the two data extents come out.
            Assert.Equal(new[] { 256 * K, 768 * K }, Extents(path).Select(x => x.LogicalOffset));

            // A range [300K, 800K): extents and holes are cut to the range on every filesystem (xfs and
            // ext4 trim in the kernel, btrfs returns whole extents and the module trims).
            List<FileExtent> ranged = Extents(path, "-IncludeHole -Offset 300KB -Length 500KB");
            Assert.Equal(
                new[] { (300 * K, 20 * K, false), (320 * K, 448 * K, true), (768 * K, 32 * K, false) },
                ranged.Select(x => (x.LogicalOffset, x.Length, x.IsHole)));
            List<FileExtent> whole = Extents(path);
            Assert.Equal(whole[0].PhysicalOffset + (44 * K), ranged[0].PhysicalOffset);
            Assert.Equal(whole[1].PhysicalOffset, ranged[2].PhysicalOffset);
            List<FileExtent> inner = Extents(path, "-IncludeHole -Offset 400KB -Length 100KB");
            Assert.Equal(new[] { (400 * K, 100 * K, true) }, inner.Select(x => (x.LogicalOffset, x.Length, x.IsHole)));
        }

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.Xfs)]
        [InlineData(TestFs.Ext4)]
        public void GapsBetweenExtentsPreallocatedPastTheEndAreHoles(TestFs which)
        {
            // Before: no hole between extents past the file's end, and the map left 18 MiB uncovered (a hostile test).
            string path = Path.Combine(fs.NewDirectory(which, "keep-size"), "keep.bin");
            const long M = 1 << 20;
            FileBuilder.WriteNew(path, FileBuilder.RandomBytes((int)M, 6));
            Shell.Run("fallocate", "-n", "-o", "10M", "-l", "1M", path);
            Shell.Run("fallocate", "-n", "-o", "20M", "-l", "1M", path);
            Shell.Run("sync");
            List<FileExtent> e = Extents(path, "-IncludeHole");
            Assert.Equal(
                new[] { (M, 9 * M), (11 * M, 9 * M) },
                e.Where(x => x.IsHole).Select(x => (x.LogicalOffset, x.Length)));
            Assert.Equal(21 * M, e[^1].LogicalOffset + e[^1].Length); // covered to the last extent's end, without gaps
            Assert.All(e.Skip(1).Zip(e), p => Assert.Equal(p.Second.LogicalOffset + p.Second.Length, p.First.LogicalOffset));
            Assert.Equal(
                Filefrag.Extents(path).Where(x => x.Logical >= 10 * M).Select(x => x.Logical),
                e.Where(x => !x.IsHole && x.LogicalOffset >= 10 * M).Select(x => x.LogicalOffset));
        }

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.Xfs)]
        [InlineData(TestFs.Ext4)]
        public void AnOffsetPastTheLargestPossibleFileMapsNothingAsAnyOffsetPastTheEnd(TestFs which)
        {
            // ext4 refuses FIEMAP from 16 TiB on (EFBIG), btrfs and xfs from 8 EiB: nothing is there.
            string path = Path.Combine(fs.NewDirectory(which, "far"), "small.bin");
            FileBuilder.WriteNew(path, FileBuilder.RandomBytes(64 * 1024, 5));

            Assert.Empty(Extents(path, "-Offset 1MB -IncludeHole"));
            Assert.Empty(Extents(path, "-Offset 20TB -IncludeHole"));
            Assert.Empty(Extents(path, "-Offset ([long]::MaxValue)"));
            Assert.Empty(Extents(path, "-Offset 20TB -Length 1MB"));
            Assert.Single(Extents(path, "-Offset 0"));
        }

        [SkippableFact]
        public void AFileWithNoDataIsOneHoleOrNothing()
        {
            string path = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "allhole"), "empty-sparse.img");
            FileBuilder.Sparse(path, 1 << 20);

            Assert.Empty(Extents(path));
            FileExtent hole = Assert.Single(Extents(path, "-IncludeHole"));
            Assert.Equal((0L, 1L << 20, true), (hole.LogicalOffset, hole.Length, hole.IsHole));
        }
    }
}
