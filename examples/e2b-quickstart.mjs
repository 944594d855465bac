// The official e2b SDK, unchanged, against Stockade: configured only by E2B_API_URL,
// E2B_SANDBOX_URL and E2B_API_KEY. Run with NODE_PATH pointing at a node_modules that has e2b.
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const { Sandbox, CommandExitError } = require(require.resolve('e2b', { paths: [process.env.NODE_PATH ?? '.'] }))

const sandbox = await Sandbox.create()
try {
  console.log(`created sandbox ${sandbox.sandboxId}`)
  await sandbox.commands.run('python3 -c "import sys; print(sys.version)"', {
    onStdout: (line) => process.stdout.write(`  stdout: ${line}`),
  })
  await sandbox.files.write('/home/user/data.csv', 'x,y\n1,2\n3,4\n')
  const sum = await sandbox.commands.run(
    "python3 -c \"import csv; print(sum(int(r['y']) for r in csv.DictReader(open('data.csv'))))\"")
  console.log(`  sum of y from a file written through the files API: ${sum.stdout.trim()}`)
  try {
    await sandbox.commands.run('exit 3')
  } catch (e) {
    if (e instanceof CommandExitError) console.log(`  a failing command raised CommandExitError, exit code ${e.exitCode}`)
    else throw e
  }
  const files = await sandbox.files.list('/home/user')
  console.log(`  /home/user holds: ${files.map((f) => f.name).join(', ')}`)
} finally {
  await sandbox.kill()
  console.log(`killed sandbox ${sandbox.sandboxId}`)
}
