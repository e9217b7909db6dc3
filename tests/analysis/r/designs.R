# Reference values from R's survey package for base weights and multistage designs
# (tests/analysis/test_multistage.py). R is a reference only: the suite reads the CSV files this
# writes and does not need R.
#
#   cd tests/analysis/r && Rscript designs.R     (R 4.2, survey 4.1.1 from Debian's r-cran-survey)
#
# Writes into ../data:
# 1. apiclus2_responses.csv, apiclus2_margins.csv: R's data(api) two-stage sample (districts, then
#    schools; fpc1, fpc2 population sizes; base weight pw) with score = api00 / 10 (a 0-100 scale)
#    and two 0/1 rates; margins are apipop's school counts by stype and by sch.wide.
# 2. city2_responses.csv, city2_margins.csv: a generated stratified two-stage city: districts
#    (strata) -> streets (PSUs, fpc1 = streets in the district) -> buildings (SSUs, fpc2 = buildings
#    in the street) -> every household asked; base weight = 1 / (n1/N1 * n2/N2 * m/M), so it varies by
#    building. District D5 has a single sampled street (a lonely PSU: R's option survey.lonely.psu).
# 3. designs_r_means.csv: svyby(~score, ~by, rake(svydesign(...)), svymean, deff = TRUE) and
#    svymean(~score) for every (data, design, by).
# 4. designs_r_rates.csv: svyciprop(~y, subset(design, by == value), method = "logit") and "xlogit"
#    per domain, with degf of the domain's design (NaN interval where degf is 0, as R gives).
suppressMessages(library(survey))
out <- "../data"
ctl <- list(maxit = 500, epsilon = 1e-12)
pm <- function(m, v) { x <- m[m$variable == v, ]; d <- data.frame(x$category, x$total); names(d) <- c(v, "Freq"); d }

## 1. apiclus2
data(api)
a <- apiclus2
a$score <- a$api00 / 10
a$sch_wide <- as.character(a$sch.wide)
a$stype <- as.character(a$stype)
a$rate_awards <- as.numeric(a$awards == "Yes")
a$rate_high <- as.numeric(a$api00 >= 750)
a$fpc2 <- as.numeric(a$fpc2)
a$respondent_id <- sprintf("S%d", a$snum)
keep <- c("respondent_id", "dnum", "snum", "fpc1", "fpc2", "pw", "cname", "stype", "sch_wide", "score",
          "rate_awards", "rate_high")
write.csv(a[, keep], file.path(out, "apiclus2_responses.csv"), row.names = FALSE)
am <- rbind(data.frame(variable = "stype", category = names(table(apipop$stype)), total = as.numeric(table(apipop$stype))),
            data.frame(variable = "sch_wide", category = names(table(apipop$sch.wide)),
                       total = as.numeric(table(apipop$sch.wide))))
write.csv(am, file.path(out, "apiclus2_margins.csv"), row.names = FALSE)

## 2. a stratified two-stage city with base weights
set.seed(20261127)
ages <- c("18-29", "30-44", "45-59", "60+")
rows <- list(); k <- 0; comm_pop <- c()
for (d in 0:5) {
  district <- sprintf("D%d", d)
  N1 <- 6 + d
  n1 <- if (d == 5) 1 else 3 + d %% 2
  for (s in seq_len(n1)) {
    street <- sprintf("%sS%d", district, s)
    N2 <- sample(8:14, 1)
    n2 <- sample(2:4, 1)
    smu <- rnorm(1, 81, 4)
    for (b in seq_len(n2)) {
      building <- sprintf("%sB%d", street, b)
      community <- sprintf("%sC%d", street, 1 + (b - 1) %% 2)
      M <- sample(30:120, 1)
      m <- sample(4:15, 1)
      sex <- sample(c("M", "F"), m, replace = TRUE, prob = c(0.42, 0.58))
      age <- sample(ages, m, replace = TRUE, prob = c(0.15, 0.2, 0.3, 0.35))
      latent <- smu + rnorm(1, 0, 3) + ifelse(sex == "F", 1, 0) + c(-1, -3, 0, 4)[match(age, ages)] + rnorm(m, 0, 6)
      q <- sapply(1:5, function(i) {
        v <- pmin(pmax(round((latent + rnorm(m, 0, 12) - 20) / 20), 0), 4) * 20 + 20
        v[runif(m) < 0.08] <- NA
        v
      })
      q <- matrix(q, nrow = m)
      k <- k + 1
      aware <- as.numeric(runif(m) < plogis(1 + (latent - 80) / 8))
      aware[runif(m) < 0.05] <- NA
      rows[[k]] <- data.frame(respondent_id = sprintf("P%d_%d", k, seq_len(m)), district = district, street = street,
                              building = building, community = community, sex = sex, age_band = age,
                              streets_in_district = N1, buildings_in_street = N2,
                              base_weight = (N1 / n1) * (N2 / n2) * (M / m),
                              q01 = q[, 1], q02 = q[, 2], q03 = q[, 3], q04 = q[, 4], q05 = q[, 5], aware = aware)
      comm_pop[community] <- (if (community %in% names(comm_pop)) comm_pop[[community]] else 0) + (N1 / n1) * (N2 / n2) * M
    }
  }
}
r <- do.call(rbind, rows)
r$score <- rowMeans(r[, c("q01", "q02", "q03", "q04", "q05")], na.rm = TRUE)
r <- r[!is.nan(r$score), ]
comm_pop <- round(comm_pop * exp(rnorm(length(comm_pop), 0, 0.1)))
total <- sum(comm_pop)
sex_total <- round(total * c(0.48, 0.52)); sex_total[2] <- total - sex_total[1]
age_total <- round(total * c(0.22, 0.28, 0.27, 0.23)); age_total[4] <- total - sum(age_total[1:3])
cm <- rbind(data.frame(variable = "community", category = names(comm_pop), total = as.numeric(comm_pop)),
            data.frame(variable = "sex", category = c("M", "F"), total = sex_total),
            data.frame(variable = "age_band", category = ages, total = age_total))
write.csv(r[, setdiff(names(r), "score")], file.path(out, "city2_responses.csv"), row.names = FALSE, na = "")
write.csv(cm, file.path(out, "city2_margins.csv"), row.names = FALSE)

## 3./4. R's numbers
datasets <- list(
  apiclus2 = list(data = a, margins = am, rake_on = c("stype", "sch_wide"), by = c("stype", "cname"),
                  rates = c("rate_awards", "rate_high"),
                  designs = list(two_stage = list(ids = ~dnum + snum, strata = NULL, fpc = ~fpc1 + fpc2, weights = ~pw),
                                 one_stage = list(ids = ~dnum, strata = NULL, fpc = NULL, weights = ~pw),
                                 two_stage_no_fpc = list(ids = ~dnum + snum, strata = NULL, fpc = NULL, weights = ~pw))),
  city2 = list(data = r, margins = cm, rake_on = c("community", "sex", "age_band"), by = c("community", "street", "district"),
               rates = c("aware"),
               designs = list(two_stage = list(ids = ~street + building, strata = ~district,
                                               fpc = ~streets_in_district + buildings_in_street, weights = ~base_weight),
                              weights_only = list(ids = ~1, strata = NULL, fpc = NULL, weights = ~base_weight),
                              strata_weights = list(ids = ~1, strata = ~district, fpc = NULL, weights = ~base_weight),
                              one_stage = list(ids = ~street, strata = ~district, fpc = ~streets_in_district,
                                               weights = ~base_weight)))
)
lonely_options <- c("adjust", "certainty")
means <- list(); rates <- list()
for (dname in names(datasets)) {
  ds <- datasets[[dname]]
  for (name in names(ds$designs)) {
    spec <- ds$designs[[name]]
    needs_lonely <- dname == "city2" && name %in% c("two_stage", "one_stage", "strata_weights")
    for (lonely in if (needs_lonely) lonely_options else "fail") {
      options(survey.lonely.psu = lonely)
      d <- svydesign(ids = spec$ids, strata = spec$strata, fpc = spec$fpc, weights = spec$weights, data = ds$data,
                     nest = TRUE)
      dr <- rake(d, lapply(ds$rake_on, function(v) as.formula(paste0("~", v))),
                 lapply(ds$rake_on, function(v) pm(ds$margins, v)), control = ctl)
      tag <- data.frame(data = dname, design = name, lonely = lonely)
      for (by in ds$by) {
        est <- svyby(~score, as.formula(paste0("~", by)), dr, svymean, vartype = "se", deff = TRUE)
        means[[length(means) + 1]] <- cbind(tag, data.frame(by = by, domain = as.character(est[[by]]),
                                                            estimate = est$score, se = est$se, deff = est[["DEff.score"]]))
        for (value in sort(unique(as.character(ds$data[[by]])))) {
          sub <- dr[as.character(ds$data[[by]]) == value, ]
          for (rate in ds$rates) {
            f <- as.formula(paste0("~", rate))
            if (sum(!is.na(ds$data[[rate]][as.character(ds$data[[by]]) == value])) == 0) next
            mean <- svymean(f, sub, na.rm = TRUE)
            lg <- tryCatch(suppressWarnings(svyciprop(f, sub, method = "logit", na.rm = TRUE)), error = function(e) NULL)
            xl <- tryCatch(suppressWarnings(svyciprop(f, sub, method = "xlogit", na.rm = TRUE)), error = function(e) NULL)
            ci <- if (is.null(lg)) c(NA, NA) else as.numeric(attr(lg, "ci"))
            xci <- if (is.null(xl)) c(NA, NA) else as.numeric(attr(xl, "ci"))
            ok <- !is.null(lg) && is.finite(coef(lg)[[1]]) && abs(coef(lg)[[1]] - coef(mean)[[1]]) < 1e-8
            rates[[length(rates) + 1]] <- cbind(tag, data.frame(
              by = by, domain = value, rate = rate, df = degf(sub), p = coef(mean)[[1]], se = SE(mean)[[1]],
              logit_low = ci[1], logit_high = ci[2], xlogit_low = xci[1], xlogit_high = xci[2], converged = ok))
          }
        }
      }
      city <- svymean(~score, dr, deff = TRUE)
      means[[length(means) + 1]] <- cbind(tag, data.frame(by = "ALL", domain = "ALL", estimate = coef(city)[[1]],
                                                          se = SE(city)[[1]], deff = deff(city)[[1]]))
    }
  }
}
options(survey.lonely.psu = "fail")
write.csv(do.call(rbind, means), file.path(out, "designs_r_means.csv"), row.names = FALSE)
write.csv(do.call(rbind, rates), file.path(out, "designs_r_rates.csv"), row.names = FALSE)
cat(sprintf("%d mean rows, %d rate rows\n", sum(sapply(means, nrow)), sum(sapply(rates, nrow))))
