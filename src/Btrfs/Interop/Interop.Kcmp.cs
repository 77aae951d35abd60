namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>kcmp(2) through syscall(2) (glibc has no wrapper): whether two tasks share a kernel resource.</summary>
    internal static partial class Libc
    {
        /// <summary>The descriptor table (linux/kcmp.h).</summary>
        internal const int KCMP_FILES = 2;

        /// <summary>The filesystem attributes: root, working directory (linux/kcmp.h).</summary>
        internal const int KCMP_FS = 3;

        /// <summary>The syscall number: 312 on x86_64, 272 on arm64 (asm-generic).</summary>
        internal static long SYS_kcmp => IsArm64 ? 272 : 312;

        [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
        internal static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5);
    }
}
