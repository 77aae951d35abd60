namespace Btrfs.Interop
{
    /// <summary>Names of the native libraries the interop layer binds to.</summary>
    internal static partial class Libc
    {
        /// <summary>glibc / musl: resolved by the runtime as libc.so.6 or libc.so.</summary>
        internal const string Name = "libc";
    }
}
