namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>LOOP_GET_STATUS64 (linux/loop.h): what file backs a loop device.</summary>
    internal static partial class Libc
    {
        /// <summary>_IO(0x4C, 0x05): fills a struct loop_info64.</summary>
        internal const uint LOOP_GET_STATUS64 = 0x4C05;

        /// <summary>struct loop_info64 (232 bytes); only the backing file's device and inode are read.</summary>
        [StructLayout(LayoutKind.Sequential, Size = 232)]
        internal struct LoopInfo64
        {
            /// <summary>The backing file's st_dev, huge_encode_dev-encoded.</summary>
            public ulong Device;

            /// <summary>The backing file's inode number.</summary>
            public ulong Inode;
        }
    }
}
