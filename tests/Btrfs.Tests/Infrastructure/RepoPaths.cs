namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.IO;
    using Btrfs.Kernel;

    /// <summary>Locations in the checkout: the repository root is the module root.</summary>
    internal static class RepoPaths
    {
        private static readonly Lazy<string> RootLazy = new(FindRoot);

        internal static string Root => RootLazy.Value;

        internal static string Manifest => Path.Combine(Root, "Btrfs.psd1");

        internal static string ModuleAssembly => Path.Combine(Root, "bin", "Btrfs.dll");

        private static string FindRoot()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Btrfs.psd1")) && Directory.Exists(Path.Combine(dir.FullName, "src")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("Cannot find the repository root (Btrfs.psd1) above " + AppContext.BaseDirectory);
        }
    }
}
