# Reference values from R's survey package for stratified, clustered and fpc designs (tests/analysis/test_designs.py).
# Run from this folder: Rscript make_design_reference.R [CITY100K_DIR]   (R 4.2, survey 4.1 from Debian packages)
# 1. Generates design_responses.csv / design_margins.csv: 6 districts (strata), communities, buildings
#    (clusters, sampled within districts), respondents with sex, age band and five items (blank = don't know).
# 2. Writes design_r_estimates.csv: raked svyby / svymean results with deff = TRUE under four designs.
# 3. With CITY100K_DIR: the same designs on the 100k reference city (strata district, clusters street),
#    by district and for the city, into city100k_r_designs.csv.
suppressMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
set.seed(20261126)
ages <- c("18-29", "30-44", "45-59", "60+")
rows <- list(); margins <- list(); k <- 0; bp <- c()
for (d in 0:5) {
  district <- sprintf("D%d", d)
  n_comm <- 3 + d %% 3
  buildings_in_population <- 0
  for (c in seq_len(n_comm)) {
    community <- sprintf("%sC%d", district, c)
    mu <- rnorm(1, 82, 4)
    pop <- round(runif(1, 800, 4000))
    margins[[length(margins) + 1]] <- data.frame(variable = "community", category = community, total = pop)
    n_build <- sample(3:6, 1)
    buildings_in_population <- buildings_in_population + 2 * n_build + 1
    for (b in seq_len(n_build)) {
      building <- sprintf("%sB%d", community, b)
      bmu <- mu + rnorm(1, 0, 3)
      m <- sample(4:22, 1)
      sex <- sample(c("M", "F"), m, replace = TRUE, prob = c(0.4, 0.6))
      age <- sample(ages, m, replace = TRUE, prob = c(0.15, 0.2, 0.3, 0.35))
      latent <- bmu + ifelse(sex == "F", 1, 0) + c(-1, -3, 0, 4)[match(age, ages)] + rnorm(m, 0, 6)
      q <- sapply(1:5, function(i) {
        v <- pmin(pmax(round((latent + rnorm(m, 0, 12) - 20) / 20), 0), 4) * 20 + 20
        v[runif(m) < 0.08] <- NA
        v
      })
      q <- matrix(q, nrow = m)
      q[runif(m) < 0.02, ] <- NA  # a few respondents with no scored answer
      k <- k + 1
      rows[[k]] <- data.frame(respondent_id = sprintf("R%d_%d", k, seq_len(m)), district = district,
                              community = community, building = building, sex = sex, age_band = age,
                              q01 = q[, 1], q02 = q[, 2], q03 = q[, 3], q04 = q[, 4], q05 = q[, 5])
    }
  }
  bp[district] <- buildings_in_population
}
r <- do.call(rbind, rows)
m <- do.call(rbind, margins)
district_pop <- tapply(m$total, substr(m$category, 1, 2), sum)
r$buildings_in_population <- as.numeric(bp[r$district])
r$district_population <- as.numeric(district_pop[r$district])
total <- sum(m$total)
m <- rbind(m, data.frame(variable = "sex", category = c("M", "F"), total = round(total * c(0.48, 0.52))))
age_total <- round(total * c(0.22, 0.28, 0.27, 0.23)); age_total[4] <- total - sum(age_total[1:3])
m <- rbind(m, data.frame(variable = "age_band", category = ages, total = age_total))
m$total[m$variable == "sex"][2] <- total - m$total[m$variable == "sex"][1]
write.csv(r, "design_responses.csv", row.names = FALSE, na = "")
write.csv(m, "design_margins.csv", row.names = FALSE)

designs <- list(
  strata = list(clustered = FALSE, strata = ~district, fpc = NULL),
  strata_fpc = list(clustered = FALSE, strata = ~district, fpc = ~district_population),
  cluster = list(clustered = TRUE, strata = NULL, fpc = NULL),
  strata_cluster_fpc = list(clustered = TRUE, strata = ~district, fpc = ~buildings_in_population)
)

estimate <- function(r, m, design, by_vars, cluster) {
  items <- grep("^q[0-9]+$", names(r), value = TRUE)
  r$score <- rowMeans(r[, items], na.rm = TRUE)
  r <- r[!is.nan(r$score), ]
  pm <- function(v) { x <- m[m$variable == v, ]; d <- data.frame(x$category, x$total); names(d) <- c(v, "Freq"); d }
  out <- list()
  for (name in names(designs)) {
    spec <- designs[[name]]
    ids <- if (spec$clustered) as.formula(paste0("~", cluster)) else ~1
    d <- svydesign(ids = ids, strata = spec$strata, fpc = spec$fpc, weights = ~1, data = r)
    dr <- rake(d, list(~community, ~sex, ~age_band), list(pm("community"), pm("sex"), pm("age_band")),
               control = list(maxit = 200, epsilon = 1e-12))
    for (by in by_vars) {
      est <- svyby(~score, as.formula(paste0("~", by)), dr, svymean, vartype = "se", deff = TRUE)
      out[[length(out) + 1]] <- data.frame(design = name, by = by, domain = est[[by]], estimate = est$score,
                                           se = est$se, deff = est[["DEff.score"]])
    }
    city <- svymean(~score, dr, deff = TRUE)
    out[[length(out) + 1]] <- data.frame(design = name, by = "ALL", domain = "ALL", estimate = coef(city)[[1]],
                                         se = SE(city)[[1]], deff = deff(city)[[1]])
  }
  do.call(rbind, out)
}

write.csv(estimate(r, m, designs, c("community", "district"), "building"), "design_r_estimates.csv", row.names = FALSE)

if (length(args) >= 1) {
  dir <- args[1]
  r <- read.csv(file.path(dir, "responses.csv"), colClasses = c(respondent_id = "character", community = "character",
                district = "character", street = "character", sex = "character", age_band = "character"))
  m <- read.csv(file.path(dir, "margins.csv"), colClasses = c("character", "character", "numeric"))
  comm <- m[m$variable == "community", ]
  district_pop <- tapply(comm$total, substr(comm$category, 1, 3), sum)
  streets <- tapply(r$street, r$district, function(s) length(unique(s)))
  fpc <- data.frame(district = names(district_pop), district_population = as.numeric(district_pop),
                    buildings_in_population = as.numeric(2 * streets[names(district_pop)] + 1))
  write.csv(fpc, "city100k_fpc.csv", row.names = FALSE)
  r <- merge(r, fpc, by = "district", sort = FALSE)
  write.csv(estimate(r, m, designs, c("district"), "street"), "city100k_r_designs.csv", row.names = FALSE)
}
