from tenure.cli.main import main

if __name__ == "__main__":  # not when a process started fresh (a billing run's shard) imports it again
    main()
