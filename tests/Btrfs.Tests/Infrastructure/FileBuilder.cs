namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.IO;

    /// <summary>Builds files with a known layout, written through ordinary I/O.</summary>
    internal static class FileBuilder
    {
        /// <summary>Incompressible bytes, reproducible from the seed.</summary>
        internal static byte[] RandomBytes(int count, int seed)
        {
            var data = new byte[count];
            new Random(seed).NextBytes(data);
            return data;
        }

        /// <summary>
        /// Writes <paramref name="count"/> chunks of <paramref name="chunk"/> random bytes, chunk i at
        /// i × <paramref name="stride"/>, with fsync after each when asked. With stride &gt; chunk the
        /// chunks are separated by holes, so each is its own extent on every filesystem.
        /// </summary>
        internal static void Chunks(string path, int count, int chunk, long stride, bool fsyncEach = true, int seed = 1)
        {
            using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite);
            byte[] data = RandomBytes(chunk, seed);
            for (int i = 0; i < count; i++)
            {
                fs.Position = i * stride;
                data[0] = (byte)i;
                fs.Write(data, 0, data.Length);
                if (fsyncEach)
                {
                    fs.Flush(flushToDisk: true);
                }
            }

            fs.Flush(flushToDisk: true);
        }

        /// <summary>Writes bytes at an offset of an existing (or new) file and fsyncs.</summary>
        internal static void WriteAt(string path, long offset, byte[] data)
        {
            using var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
            fs.Position = offset;
            fs.Write(data, 0, data.Length);
            fs.Flush(flushToDisk: true);
        }

        /// <summary>
        /// Creates a new file with <paramref name="data"/> through a plain FileStream: no O_TRUNC and no
        /// preallocation (File.WriteAllBytes/WriteAllText fallocate first, and btrfs writes into
        /// preallocated extents in place, uncompressed).
        /// </summary>
        internal static void WriteNew(string path, byte[] data, bool fsync = true)
        {
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
            fs.Write(data, 0, data.Length);
            fs.Flush(flushToDisk: fsync);
        }

        /// <summary>Creates a file of <paramref name="size"/> bytes with no data at all (one hole).</summary>
        internal static void Sparse(string path, long size)
        {
            using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
            fs.SetLength(size);
        }
    }
}
