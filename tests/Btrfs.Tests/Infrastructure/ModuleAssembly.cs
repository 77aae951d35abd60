namespace Btrfs.Tests.Infrastructure
{
    using System.Reflection;
    using System.Runtime.CompilerServices;
    using System.Runtime.Loader;
    using Btrfs.Kernel;

    /// <summary>
    /// The test project references Btrfs.csproj with Private=false, so no copy of Btrfs.dll sits next
    /// to the tests: both the tests and Import-Module load bin/Btrfs.dll, the file the manifest names.
    /// </summary>
    internal static class ModuleAssembly
    {
        [ModuleInitializer]
        internal static void Register()
        {
            AssemblyLoadContext.Default.Resolving += (context, name) =>
                name.Name == "Btrfs" ? context.LoadFromAssemblyPath(RepoPaths.ModuleAssembly) : null;
        }
    }
}
