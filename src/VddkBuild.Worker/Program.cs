// vddkbuild-worker: runs one VddkBuild task for MSBuild (see NativeWorker.cs in VddkBuild.Tasks for the protocol).
return VddkBuild.Tasks.NativeWorkerHost.Run(Console.OpenStandardInput(), Console.OpenStandardOutput());
